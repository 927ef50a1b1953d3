"""Simulated LoRaWAN sensors (pure): the scenario keys, the ChirpStack events they publish, and the
engine fed by the gateway's own ChirpStack receiver, without a broker."""

from __future__ import annotations

import base64
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from occupancy.lorawan.chirpstack import Uplink, parse_event, parse_topic
from occupancy.lorawan.models import decode
from occupancy.lorawan.receiver import Receiver, SensorReading
from occupancy.model import SpaceState
from simulators import SimulationError
from simulators.chirpstack_link import binding, receivers_for
from simulators.engine import Engine
from simulators.lorawan import Publication
from simulators.scenario import Scenario, parse_scenario
from simulators.verify import Verdict, VerifyInput, lorawan_findings
from stack.scenario import build_engine, scenario_site_files

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
NWAVE = {"site": "north-lot", "zone": "N", "model": "nwave-nps405", "receivers": 3,
         "duplicate_share": 0.3, "late_share": 0.1, "heartbeat_s": 900, "rejoin": ["01:00"]}


def scenario(*lorawan: dict[str, Any], **keys: Any) -> Scenario:
    data = {"site_file": "lorawan-lot.yaml", "start": "2026-11-26T07:00", "hours": 2, "seed": 4,
            "lorawan": list(lorawan) or [NWAVE], **keys}
    return parse_scenario(data, EXAMPLES)


def engine(s: Scenario) -> Engine:
    return build_engine(s, scenario_site_files(s), NOW)


def run_through_receiver(e: Engine, receivers: dict[Any, Receiver]
                         ) -> list[tuple[datetime, str, SpaceState]]:
    """Every step's events through the gateway's receiver into the engine; the LoRaWAN
    machines' states after each step (DevEUI, state)."""
    seen = []
    for step in e.run():
        readings = [r for p in step.publications for rc in receivers.values()
                    for r in rc.receive(p.topic(), p.payload(), step.at)]
        e.receive(step, readings)
        for dev_eui in e.lora:
            track = next(iter(e.lora_machines.machine(dev_eui).tracks.values()))
            seen.append((step.at, dev_eui, track.state))
    return seen


def wrong_states(e: Engine, seen: list[tuple[datetime, str, SpaceState]]) -> list[str]:
    """Where a machine differs from the truth, outside the windows the truth excuses."""
    out = []
    for at, dev_eui, state in seen:
        key = e.lora[dev_eui].space
        if not e.truth.is_excused(key, at) and state is not e.truth.expected_at(key, at):
            out.append(f"{key[2]} at {at:%H:%M}: {state}, truth {e.truth.expected_at(key, at)}")
    return out


# ---- scenario keys -------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "message"), [
    ({"model": "acme-9000"}, "unknown device model 'acme-9000'; known: bosch-tpl110"),
    ({"spaces": ["N-001"]}, "a zone or spaces, not both"),
    ({"stale_after_s": 600}, "stale_after_s must be longer than heartbeat_s"),
    ({"rejoin": ["1h"]}, "not an offset"),
    ({"receivers": 0}, "greater than or equal to 1"),
    ({"duplicate_share": 1.5}, "less than or equal to 1"),
    ({"modle": "x"}, "Extra inputs are not permitted"),
])
def test_a_bad_lorawan_entry_is_a_clear_error(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        scenario({**NWAVE, **entry})
    assert err.value.errors()[0]["loc"][:2] == ("lorawan", 0)


@pytest.mark.parametrize(("entries", "message"), [
    ([{**NWAVE, "site": "nowhere"}], "site 'nowhere' is not simulated"),
    ([{**NWAVE, "zone": "Q"}], "has no zone 'Q'"),
    ([NWAVE, {**NWAVE, "zone": None, "spaces": ["N-003"]}], "N-003 is in two lorawan entries"),
    ([{**NWAVE, "zone": None, "spaces": ["N-099"]}], "not bound to gw-north-lot"),
])
def test_entries_that_do_not_fit_the_site_name_it(entries: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(SimulationError, match=message):
        engine(scenario(*entries))


def test_a_site_file_device_keeps_its_dev_eui_and_id() -> None:
    e = engine(scenario())
    assert e.lora["70b3d5e75e000001"].device == "nps-n001"
    assert binding(e.lora["70b3d5e75e000001"]).space.space == "N-001"
    assert len(e.lora) == 20


# ---- the events ------------------------------------------------------------------------


def publications(e: Engine) -> list[Publication]:
    return [p for step in e.run() for p in step.publications]


def test_the_same_seed_gives_the_same_events_byte_for_byte() -> None:
    first = [(p.topic(), p.payload()) for p in publications(engine(scenario()))]
    again = [(p.topic(), p.payload()) for p in publications(engine(scenario()))]
    assert first == again and len(first) > 100
    other = [(p.topic(), p.payload()) for p in publications(engine(scenario(seed=5)))]
    assert other != first


def test_uplinks_are_chirpstack_events_carrying_the_models_real_frames() -> None:
    e = engine(scenario({**NWAVE, "late_share": 0.0}, {"site": "north-lot", "zone": "X",
                                                        "model": "netvox-r719a"}))
    ups = [p for p in publications(e) if p.event == "up"]
    assert {e.lora[p.dev_eui].model for p in ups} == {"nwave-nps405", "netvox-r719a"}
    for p in ups:
        event = parse_event(parse_topic(p.topic()), p.payload())
        assert isinstance(event, Uplink) and event.time == p.at
        frame = decode(e.lora[p.dev_eui].model, event.f_port, event.data)
        truth = e.truth.state_at(e.lora[p.dev_eui].space, p.at)
        assert frame.occupied is (truth is SpaceState.OCCUPIED), p.body
        assert base64.b64decode(p.body["data"]) == event.data
        assert 1 <= len(p.body["rxInfo"]) <= 3 and p.body["txInfo"]["modulation"]["lora"]
        assert p.body["deviceInfo"]["devEui"] == p.dev_eui


def test_duplicates_late_frames_and_a_rejoin() -> None:
    e = engine(scenario())
    pubs = publications(e)
    by_dedup: dict[str, list[Publication]] = defaultdict(list)
    for p in pubs:
        by_dedup[p.body["deduplicationId"]].append(p)
    copies = [ps for ps in by_dedup.values() if len(ps) > 1]
    assert copies and all(len({(p.body.get("fCnt", 0), p.dev_eui) for p in ps}) == 1 for ps in copies)
    assert all(not ps[0].duplicate and all(p.duplicate for p in ps[1:]) for ps in copies)
    # a late uplink comes after a newer one of its device
    for i, p in enumerate(pubs):
        if p.late and not p.duplicate:
            earlier = [q for q in pubs[:i] if q.dev_eui == p.dev_eui and q.event == "up"]
            assert earlier and earlier[-1].at > p.at
    assert any(p.late for p in pubs)
    # at 01:00 every device joins again: a new devAddr, fCnt from 0 (left out, like protobuf)
    joins = [p for p in pubs if p.event == "join"]
    assert len(joins) == 20 and {p.at for p in joins} == {e.stamp(e.start) + (e.tick * 60)}
    for j in joins:
        after = next(p for p in pubs[pubs.index(j):] if p.event == "up" and p.dev_eui == j.dev_eui)
        assert "fCnt" not in after.body and after.body["devAddr"] == j.body["devAddr"]


# ---- through the receiver ----------------------------------------------------------------


def test_through_the_gateways_receiver_every_machine_follows_the_truth() -> None:
    e = engine(scenario(NWAVE, {"site": "north-lot", "zone": "D", "model": "dingtek-do201",
                                "late_share": 0.2, "heartbeat_s": 600}))
    receivers = receivers_for(e)
    seen = run_through_receiver(e, receivers)
    assert len(seen) > 1000 and wrong_states(e, seen) == []
    assert e.late_readings == 0
    (c,) = [r.counts() for r in receivers.values()]
    assert e.lorawan is not None
    published = e.lorawan.published
    assert published["duplicate"] > 0 and published["late"] > 0
    assert (c.uplinks, c.duplicates, c.late) == (published["up"], published["duplicate"],
                                                 published["late"])
    assert c.joins == 20 and c.fcnt_resets == 20
    assert c.unknown_devices == c.undecodable == c.malformed == 0


def test_late_frames_let_through_are_caught() -> None:
    """A receiver without sessions (every uplink applied as it comes) lets an older state
    reach the machines: the engine counts it and the verifier fails."""
    e = engine(scenario({**NWAVE, "late_share": 0.3}))
    for step in e.run():
        readings = []
        for p in step.publications:
            if p.event == "up":
                d = e.lora[p.dev_eui]
                frame = decode(d.model, p.body["fPort"], base64.b64decode(p.body["data"]))
                b = binding(d)
                readings.append(SensorReading(b.device, d.dev_eui, b.space, p.at, "network", "up",
                                              occupied=frame.occupied))
        e.receive(step, readings)
    assert e.late_readings > 0
    verdict = Verdict()
    lorawan_findings(VerifyInput(e.truth, {}, NOW, NOW, [], e.tick, 0.1,
                                 lorawan_late=e.late_readings), verdict)
    assert [f.check for f in verdict.findings] == ["lorawan"]
    assert "late or repeated ChirpStack frames let through" in verdict.findings[0].what
