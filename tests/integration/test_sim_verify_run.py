"""A verdict is about its own run (issue 16, item 4): a scenario run twice on one database, the
second time with ingest stopped, fails its delivery, checkpoint and history checks although
the first run's rows carry the same gateways and seqs at nearly the same times."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from occupancy.sitefile import read_site_file
from simulators.engine import Step
from simulators.scenario import load_scenario
from stack.embedded import Mosquitto
from stack.scenario import ScenarioRun, run_scenario
from tests.support.ingest import settings_for

pytestmark = pytest.mark.mosquitto


async def _no_ingest(step: Step, run: ScenarioRun) -> None:
    if step.index == 0 and run.stack.ingest is not None:
        await run.stack.ingest.stop()


def test_a_second_run_without_ingest_fails_on_the_same_database(
        database: str, broker: Mosquitto, topic_prefix: str, examples_dir: Path, tmp_path: Path) -> None:
    scenario = load_scenario(examples_dir / "scenarios" / "day.yaml").model_copy(update={
        "start": None, "hours": 2.0, "speed": 7200.0, "checkpoints": ["01:00"]})
    site = read_site_file(examples_dir / "scenarios" / "marvdasht.yaml")
    # MQTT 3.1.1 and no session: what ingest misses is gone (see test_sim_chain.py)
    settings = settings_for(database, broker.url + "?protocol=4", topic_prefix, session_expiry_s=0)
    first = asyncio.run(run_scenario(scenario, [site], settings, data_dir=tmp_path / "one"))
    assert first.verdict is not None and first.verdict.ok, first.verdict and first.verdict.text()
    assert first.verdict.history_source == "api"
    # a fresh data dir: the gateways start over at boot 1, seq 1, as in the first run
    second = asyncio.run(run_scenario(scenario, [site], settings, data_dir=tmp_path / "two",
                                      hooks=_no_ingest))
    assert second.verdict is not None
    text = second.verdict.text()
    assert {"delivery", "checkpoint", "history"} <= {f.check for f in second.verdict.findings}, text
    assert second.verdict.history_source == "this run's stored events"
    assert any("are not this run's" in n for n in second.verdict.notes), text
