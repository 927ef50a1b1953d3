"""The scenario engine (pure): determinism, faults, truth; scenario files validate."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from occupancy.ids import GatewayId
from occupancy.model import EventKind, OccupancyEvent, SpaceState
from occupancy.sitefile import SiteFile, parse_site_file
from occupancy.wire import EventBatch, encode_events
from simulators import SimulationError
from simulators.engine import Engine
from simulators.province import province_site_files
from simulators.scenario import ProvinceSpec, Scenario, load_scenario, parse_scenario

TEHRAN = ZoneInfo("Asia/Tehran")
START = datetime(2026, 11, 26, 6, 0, tzinfo=TEHRAN)


@pytest.fixture(scope="module")
def marvdasht(examples_dir: Path) -> SiteFile:
    return parse_site_file(yaml.safe_load((examples_dir / "scenarios" / "marvdasht.yaml").read_text()))


def scenario(**kw: object) -> Scenario:
    return parse_scenario({"site_file": "x.yaml", "hours": 6, "seed": 5, **kw})


def stream(sc: Scenario, sf: SiteFile, shift: timedelta = timedelta(0)) -> bytes:
    """Every event of the run, encoded as the gateways would (seqs in order), one blob."""
    engine = Engine(sc, [sf], start=START, shift=shift)
    seqs: dict[str, int] = {}
    out = []
    for step in engine.run():
        for (_, gw), drafts in sorted(step.events.items()):
            events = []
            for d in drafts:
                seqs[gw] = seqs.get(gw, 0) + 1
                events.append(OccupancyEvent(seqs[gw], d.space, d.state, d.at, d.source,
                                             d.confidence, d.device, d.kind))
            if events:
                out.append(encode_events(EventBatch(GatewayId(gw), 1, tuple(events))))
        out.extend(f"{a.kind}@{a.at.isoformat()}".encode() for a in step.actions)
    return b"\n".join(out)


def test_same_scenario_and_seed_give_the_same_stream_byte_for_byte(marvdasht: SiteFile) -> None:
    sc = scenario(faults=[{"kind": "flapping", "site": "station-lot", "spaces": ["A-010"],
                           "at": "01:00", "for": "00:10"},
                          {"kind": "uplink_loss", "gateway": "gw-bazaar", "at": "02:00", "for": "00:30"}])
    a, b = stream(sc, marvdasht), stream(sc, marvdasht)
    assert a == b and len(a) > 50_000
    assert stream(sc.model_copy(update={"seed": 6}), marvdasht) != a


def test_every_space_starts_known_and_heartbeats_keep_it_fresh(marvdasht: SiteFile) -> None:
    engine = Engine(scenario(), [marvdasht], start=START)
    first = engine.begin()
    assert sum(len(v) for v in first.events.values()) == 180
    last_seen: dict[str, datetime] = {}
    for step in iter(engine.step, None):
        for drafts in step.events.values():
            for d in drafts:
                last_seen[str(d.space)] = d.at
        assert all(step.at - t <= timedelta(seconds=300) for t in last_seen.values())
    assert len(last_seen) == 180


def test_silent_sensor_goes_unknown_through_the_gateways_state_machine(marvdasht: SiteFile) -> None:
    # a silent sensor gives no readings; as on a real gateway, its machine restates the last
    # state at heartbeats until the site's staleness bound (900 s), then turns it unknown
    sc = scenario(faults=[{"kind": "silent", "site": "station-lot", "spaces": ["B-001"], "at": "01:00"}])
    engine = Engine(sc, [marvdasht], start=START)
    after = [d for s in engine.run() if s.sim_t >= START + timedelta(hours=1)
             for d in s.events.get(("marvdasht", "gw-station-lot"), []) if d.space.space == "B-001"]
    changes = [d for d in after if d.kind is EventKind.CHANGE]
    assert [d.state for d in changes] == [SpaceState.UNKNOWN]
    gone = changes[0].at
    assert START + timedelta(hours=1) < gone <= START + timedelta(hours=1, minutes=15)
    assert {d.state for d in after if d.at > gone} == {SpaceState.UNKNOWN}  # heartbeats say so
    assert all(d.kind is EventKind.HEARTBEAT for d in after if d.at < gone)
    key = ("marvdasht", "station-lot", "B-001")
    assert engine.truth.expected_at(key, START + timedelta(hours=1, minutes=20)) is SpaceState.UNKNOWN
    assert engine.truth.expected_at(key, START + timedelta(minutes=50)) is not SpaceState.UNKNOWN


def test_flapping_toggles_and_clock_skew_shifts_times(marvdasht: SiteFile) -> None:
    sc = scenario(faults=[
        {"kind": "flapping", "site": "station-lot", "spaces": ["A-010"], "at": "01:00", "for": "00:10"},
        {"kind": "clock_skew", "gateway": "gw-bazaar", "at": "02:00", "for": "00:10", "offset_s": 3600}])
    engine = Engine(sc, [marvdasht], start=START)
    flaps, skewed = 0, 0
    for step in engine.run():
        for d in step.events.get(("marvdasht", "gw-station-lot"), []):
            flaps += d.space.space == "A-010" and d.kind is EventKind.CHANGE
        skewed += step.skew.get(("marvdasht", "gw-bazaar"), 0) == 3600
    assert flaps >= 10
    assert skewed == 10
    assert [f.kind for f in engine.truth.faults] == ["flapping", "clock_skew"]


def test_gateway_faults_become_actions_at_their_times(marvdasht: SiteFile) -> None:
    sc = scenario(faults=[{"kind": "uplink_loss", "gateway": "gw-station-lot", "at": "01:00", "for": "00:30"},
                          {"kind": "duplicate_burst", "gateway": "gw-station-lot", "at": "02:00", "count": 9},
                          {"kind": "malformed", "gateway": "gw-bazaar", "at": "03:00", "count": 2}])
    engine = Engine(sc, [marvdasht], start=START)
    actions = [(a.kind, s.sim_t - START, a.count) for s in engine.run() for a in s.actions]
    assert actions == [("uplink_cut", timedelta(hours=1), 50),
                       ("uplink_restore", timedelta(hours=1, minutes=30), 0),
                       ("duplicate_burst", timedelta(hours=2), 9),
                       ("malformed", timedelta(hours=3), 2)]


def test_the_shift_moves_every_event_and_the_truth(marvdasht: SiteFile) -> None:
    engine = Engine(scenario(hours=1), [marvdasht], start=START, shift=timedelta(days=3))
    step = engine.begin()
    assert all(d.at == START + timedelta(days=3) for v in step.events.values() for d in v)


def test_scenario_files_validate_and_name_the_wrong_key(examples_dir: Path, tmp_path: Path) -> None:
    for path in sorted((examples_dir / "scenarios").glob("*.yaml")):
        if path.name not in ("marvdasht.yaml", "ufpr05.yaml", "lorawan-lot.yaml"):  # site files
            load_scenario(path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("site_file: x.yaml\nfaults: [{kind: flapping, site: a, spaces: [], at: '1:00'}]\n")
    with pytest.raises(SimulationError, match="faults"):
        load_scenario(bad)
    bad.write_text("hours: 3\n")
    with pytest.raises(SimulationError, match="site_file and province"):
        load_scenario(bad)


def test_unknown_sites_and_gateways_are_refused(marvdasht: SiteFile) -> None:
    with pytest.raises(SimulationError, match="unknown sites"):
        Engine(scenario(sites=["nope"]), [marvdasht], start=START)
    engine = Engine(scenario(faults=[{"kind": "malformed", "gateway": "gw-x", "at": "00:00"}]),
                    [marvdasht], start=START)
    with pytest.raises(SimulationError, match="gw-x"):
        engine.begin()


def test_province_makes_84_municipalities_of_lots_and_markets() -> None:
    files = province_site_files(ProvinceSpec())
    assert len(files) == 84
    assert len({f.tenant.id for f in files}) == 84
    spaces = sum(len(s.spaces()) for f in files for s in f.sites)
    assert spaces == 84 * (2 * 120 + 60)
    assert province_site_files(ProvinceSpec()) == files
    engine = Engine(parse_scenario({"province": {"municipalities": 3}, "hours": 1}), files[:3],
                    start=START)
    assert len(engine.targets) == 9
