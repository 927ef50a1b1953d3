"""Province scale through the whole chain: 84 municipalities (one small lot
each, 84 gateways) for three simulated hours, accelerated; ``--verify`` passes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from simulators.province import province_site_files
from simulators.scenario import parse_scenario
from stack.embedded import Mosquitto
from stack.scenario import run_scenario
from tests.support.ingest import settings_for

pytestmark = pytest.mark.mosquitto


def test_84_municipalities_run_through_the_chain_and_verify(
        database: str, broker: Mosquitto, topic_prefix: str, tmp_path: Path) -> None:
    scenario = parse_scenario({
        "name": "province-small", "hours": 3, "speed": 1080, "seed": 2, "tick_s": 60,
        "heartbeat_s": 600, "start": "2026-11-26T07:00", "checkpoints": ["01:30"],
        "province": {"municipalities": 84, "lots": 1, "markets": 0, "bays": 6, "seed": 2},
        "verify": {"history_step_s": 1800}})
    assert scenario.province is not None
    site_files = province_site_files(scenario.province)
    started = time.monotonic()
    chain = asyncio.run(run_scenario(scenario, site_files, settings_for(database, broker.url, topic_prefix),
                                     data_dir=tmp_path))
    real = time.monotonic() - started
    assert chain.verdict is not None and chain.play is not None
    print(chain.verdict.text(), f"\nreal {real:.1f}s, {chain.play.events} events, "
          f"{len(chain.play.sent)} gateways")
    assert chain.verdict.ok, chain.verdict.text()
    assert len(chain.play.sent) == 84 and all(chain.play.sent.values())
    assert chain.verdict.compared >= 84 * 6 * 2  # now + 1 checkpoint
