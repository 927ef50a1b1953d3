"""Scenarios against the whole chain (real PostgreSQL, Mosquitto, ingest, API):
a clean day verifies; a chain broken on purpose fails verification, naming spaces and times."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from occupancy.sitefile import read_site_file
from simulators.engine import Step
from simulators.scenario import load_scenario
from stack.embedded import Mosquitto
from stack.scenario import ScenarioRun, run_scenario
from tests.support.ingest import settings_for

pytestmark = pytest.mark.mosquitto


def test_a_day_of_a_120_bay_lot_and_a_60_stall_market_verifies(
        database: str, broker: Mosquitto, topic_prefix: str, examples_dir: Path,
        tmp_path: Path) -> None:
    day = load_scenario(examples_dir / "scenarios" / "day.yaml")
    scenario = day.model_copy(update={"speed": day.speed * 2})  # the same day in half the time
    started = time.monotonic()
    site = read_site_file(examples_dir / "scenarios" / "marvdasht.yaml")
    chain = asyncio.run(run_scenario(scenario, [site], settings_for(database, broker.url, topic_prefix),
                                     data_dir=tmp_path, report_dir=tmp_path / "report"))
    real = time.monotonic() - started
    assert chain.verdict is not None and chain.play is not None
    print(chain.verdict.text(), f"\nreal {real:.1f}s, {chain.play.events} events")
    assert chain.verdict.ok, chain.verdict.text()
    assert real < 60
    assert chain.verdict.compared >= 180 * 4  # now + 3 checkpoints
    assert {p.name for p in chain.reports} >= {"marvdasht-station-lot.png", "marvdasht-bazaar.png"}


def test_verify_fails_naming_spaces_and_times_when_ingest_stops_without_a_session(
        database: str, broker: Mosquitto, topic_prefix: str, examples_dir: Path,
        tmp_path: Path) -> None:
    scenario = load_scenario(examples_dir / "scenarios" / "day.yaml").model_copy(update={
        "start": None, "hours": 4.0, "speed": 2160.0, "checkpoints": ["02:00"]})
    scenario = scenario.model_copy(update={"start": None})
    # MQTT 3.1.1 gateways: an MQTT 5 gateway would hear "no matching subscribers"
    # while ingest is away and keep its events in the outbox, hiding the break.
    settings = settings_for(database, broker.url + "?protocol=4", topic_prefix, session_expiry_s=0)

    async def break_ingest(step: Step, run: ScenarioRun) -> None:
        assert run.stack.ingest is not None
        if step.index == 60:  # 01:00 simulated: ingest goes away, and its session with it
            await run.stack.ingest.stop()
        elif step.index == 150:  # 02:30: back, but what was published meanwhile is gone
            await run.stack.ingest.start()

    site = read_site_file(examples_dir / "scenarios" / "marvdasht.yaml")
    chain = asyncio.run(run_scenario(scenario, [site], settings,
                                     data_dir=tmp_path, hooks=break_ingest))
    assert chain.verdict is not None
    text = chain.verdict.text()
    print(text)
    assert not chain.verdict.ok
    checks = {f.check for f in chain.verdict.findings}
    assert {"delivery", "checkpoint"} <= checks, text
    delivery = next(f for f in chain.verdict.findings if f.check == "delivery")
    assert "never stored" in delivery.what and "seq" in delivery.what and delivery.at is not None
    checkpoint = next(f for f in chain.verdict.findings if f.check == "checkpoint")
    assert "A-" in checkpoint.what or "B-" in checkpoint.what or "stall-" in checkpoint.what
