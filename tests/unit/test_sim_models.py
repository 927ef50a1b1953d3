"""The parking and market models: seeded, pure, plausible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from occupancy.model import SpaceState
from occupancy.sitefile import Site, SiteFile, parse_site_file
from simulators import SimulationError
from simulators.market import Market
from simulators.models import model_for, site_spaces
from simulators.parking import ParkingLot, ParkingParams

TEHRAN = ZoneInfo("Asia/Tehran")
# 2026-11-26 is a Thursday; 2026-11-27 a Friday (the fruit market's closed day)
THURSDAY = datetime(2026, 11, 26, tzinfo=TEHRAN)


@pytest.fixture(scope="module")
def shiraz(examples_dir: Path) -> SiteFile:
    return parse_site_file(yaml.safe_load((examples_dir / "shiraz.yaml").read_text()))


@pytest.fixture(scope="module")
def lot(shiraz: SiteFile) -> Site:
    return shiraz.site("central-lot")


@pytest.fixture(scope="module")
def market(shiraz: SiteFile) -> Site:
    return shiraz.site("fruit-market")


def spaces(site: Site) -> list[str]:
    return [s for _, s in site.spaces()]


def run_day(model: ParkingLot | Market, site: Site, start: datetime, step_s: int = 60,
            hours: int = 24) -> list[tuple[datetime, list[tuple[str, SpaceState]]]]:
    model.initial_states(spaces(site), start)  # type: ignore[arg-type]
    out = []
    for i in range(1, hours * 3600 // step_s + 1):
        now = start + timedelta(seconds=i * step_s)
        out.append((now, [(str(s), st) for s, st in model.advance(now)]))
    return out


def occupied(model: ParkingLot | Market) -> int:
    return sum(st is SpaceState.OCCUPIED for st in model.states().values())


# ---- parking ----------------------------------------------------------------


def test_parking_same_seed_same_day_other_seed_other_day(lot: Site) -> None:
    a = run_day(ParkingLot(lot, seed=7, tz=TEHRAN), lot, THURSDAY)
    b = run_day(ParkingLot(lot, seed=7, tz=TEHRAN), lot, THURSDAY)
    c = run_day(ParkingLot(lot, seed=8, tz=TEHRAN), lot, THURSDAY)
    assert a == b
    assert a != c


def test_parking_never_exceeds_capacity_and_turns_drivers_away_when_full(lot: Site) -> None:
    model = ParkingLot(lot, seed=3, tz=TEHRAN)
    model.initial_states(spaces(lot), THURSDAY)  # type: ignore[arg-type]
    peak = 0
    for i in range(1, 24 * 60 + 1):
        model.advance(THURSDAY + timedelta(minutes=i))
        assert occupied(model) <= model.capacity == 128
        peak = max(peak, occupied(model))
    assert peak >= 128 - 5  # the 3 disabled and 2 EV bays wait for their drivers
    assert model.turned_away > 0


def test_parking_follows_the_day(lot: Site) -> None:
    model = ParkingLot(lot, seed=1, tz=TEHRAN)
    model.initial_states(spaces(lot), THURSDAY)  # type: ignore[arg-type]
    by_hour = {}
    for hour in range(1, 24):
        model.advance(THURSDAY + timedelta(hours=hour))
        by_hour[hour] = occupied(model)
    assert by_hour[4] < 10  # quiet night
    assert by_hour[10] > 90  # morning peak
    assert by_hour[19] > 90  # evening peak


def test_parking_prefers_bays_near_the_zone_start(lot: Site) -> None:
    model = ParkingLot(lot, seed=5, tz=TEHRAN)
    model.initial_states(spaces(lot), THURSDAY + timedelta(hours=4))  # type: ignore[arg-type]
    taken = {"near": 0, "far": 0}
    for _now, changes in run_day(model, lot, THURSDAY + timedelta(hours=4), hours=4):
        for space, state in changes:
            if state is SpaceState.OCCUPIED and space.startswith("B-"):
                taken["near" if int(space[2:]) <= 16 else "far"] += 1
    assert taken["near"] > taken["far"]


def test_reserved_bays_serve_only_their_drivers(lot: Site) -> None:
    model = ParkingLot(lot, seed=4, tz=TEHRAN, params=ParkingParams(disabled_share=0.0, ev_share=0.0))
    model.initial_states(spaces(lot), THURSDAY)  # type: ignore[arg-type]
    for i in range(1, 24 * 12):
        model.advance(THURSDAY + timedelta(minutes=5 * i))
        states = model.states()
        reserved = ["A-001", "A-002", "A-003", "A-047", "A-048"]
        assert all(states[s] is SpaceState.FREE for s in reserved)  # type: ignore[index]
    used = ParkingLot(lot, seed=4, tz=TEHRAN, params=ParkingParams(disabled_share=0.3, ev_share=0.3))
    seen = {c[0] for _t, cs in run_day(used, lot, THURSDAY) for c in cs if c[1] is SpaceState.OCCUPIED}
    assert {"A-001", "A-047"} <= seen


def test_friday_is_the_quiet_weekend(lot: Site) -> None:
    def noon(day: datetime) -> int:
        model = ParkingLot(lot, seed=1, tz=TEHRAN)
        model.initial_states(spaces(lot), day)  # type: ignore[arg-type]
        model.advance(day + timedelta(hours=10))
        return model.arrivals
    assert noon(THURSDAY + timedelta(days=1)) < 0.7 * noon(THURSDAY)


def test_parking_reports_net_changes_once_per_bay(lot: Site) -> None:
    model = ParkingLot(lot, seed=2, tz=TEHRAN)
    model.initial_states(spaces(lot), THURSDAY)  # type: ignore[arg-type]
    before = model.states()
    changes = model.advance(THURSDAY + timedelta(hours=9))  # one long step
    after = model.states()
    assert len({s for s, _ in changes}) == len(changes)
    assert {s for s, _ in changes} == {s for s in after if after[s] is not before[s]}
    assert model.advance(THURSDAY + timedelta(hours=9)) == []


def test_parking_models_only_the_given_spaces(lot: Site) -> None:
    model = ParkingLot(lot, seed=1, tz=TEHRAN)
    states = model.initial_states(spaces(lot)[:10], THURSDAY)  # type: ignore[arg-type]
    assert [s for s, _ in states] == spaces(lot)[:10]
    model.advance(THURSDAY + timedelta(hours=12))
    assert set(model.states()) == set(spaces(lot)[:10])


def test_models_refuse_misuse(lot: Site, market: Site) -> None:
    with pytest.raises(SimulationError):
        ParkingLot(market, seed=1)
    with pytest.raises(SimulationError):
        Market(lot, seed=1)
    with pytest.raises(SimulationError):
        ParkingLot(lot, seed=1).advance(THURSDAY)
    with pytest.raises(SimulationError):
        Market(market, seed=1).advance(THURSDAY)


# ---- market -----------------------------------------------------------------


def test_market_same_seed_same_day(market: Site) -> None:
    a = run_day(Market(market, seed=4, tz=TEHRAN), market, THURSDAY, step_s=300)
    b = run_day(Market(market, seed=4, tz=TEHRAN), market, THURSDAY, step_s=300)
    c = run_day(Market(market, seed=5, tz=TEHRAN), market, THURSDAY, step_s=300)
    assert a == b
    assert a != c


def test_market_is_busy_while_open_and_empty_at_night(market: Site) -> None:
    model = Market(market, seed=1, tz=TEHRAN)
    model.initial_states(spaces(market), THURSDAY)  # type: ignore[arg-type]
    assert occupied(model) == 0  # midnight
    model.advance(THURSDAY.replace(hour=3))
    assert occupied(model) == 0
    model.advance(THURSDAY.replace(hour=7, minute=30))
    assert 0.7 * 66 <= occupied(model) < 66  # most came, some are absent
    model.advance(THURSDAY.replace(hour=13))
    assert 0.7 * 66 <= occupied(model) < 66
    model.advance(THURSDAY.replace(hour=23))
    assert occupied(model) == 0


def test_vendors_arrive_around_opening_and_leave_around_closing(market: Site) -> None:
    arrivals, departures = [], []
    for now, changes in run_day(Market(market, seed=9, tz=TEHRAN), market, THURSDAY):
        for _, state in changes:
            (arrivals if state is SpaceState.OCCUPIED else departures).append(now.hour)
    assert all(5 <= h <= 8 for h in arrivals)
    assert all(19 <= h <= 23 for h in departures)
    assert sorted(arrivals)[len(arrivals) // 2] == 6  # most come before the 07:00 opening


def test_market_is_empty_on_its_closed_day(market: Site) -> None:
    model = Market(market, seed=1, tz=TEHRAN)
    friday_noon = (THURSDAY + timedelta(days=1)).replace(hour=12)
    model.initial_states(spaces(market), friday_noon)  # type: ignore[arg-type]
    assert occupied(model) == 0
    model.advance(friday_noon.replace(hour=18))
    assert occupied(model) == 0
    model.advance(friday_noon + timedelta(days=1))  # Saturday noon: open again
    assert occupied(model) > 40


def test_a_subset_of_stalls_sees_the_same_day(market: Site) -> None:
    noon = THURSDAY.replace(hour=12)
    full = Market(market, seed=3, tz=TEHRAN)
    part = Market(market, seed=3, tz=TEHRAN)
    full.initial_states(spaces(market), noon)  # type: ignore[arg-type]
    part.initial_states(spaces(market)[40:], noon)  # type: ignore[arg-type]
    assert part.states() == {s: st for s, st in full.states().items() if s in part.states()}


def test_model_for_picks_the_site_kind_and_spaces_follow_bindings(shiraz: SiteFile) -> None:
    assert isinstance(model_for(shiraz.site("central-lot"), seed=1, tz=UTC), ParkingLot)
    assert isinstance(model_for(shiraz.site("fruit-market"), seed=1, tz=UTC), Market)
    assert len(site_spaces(shiraz, "fruit-market", "gw-fruit-market")) == 66
    with pytest.raises(SimulationError):
        site_spaces(shiraz, "central-lot", "gw-fruit-market")
    with pytest.raises(SimulationError):
        site_spaces(shiraz, "central-lot", "gw-nope")
