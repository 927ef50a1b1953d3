"""The LoRaWAN example scenario against the whole chain: simulated sensors publish ChirpStack v4
events (duplicates, late frames, a rejoin) on a ChirpStack broker, the gateway's ChirpStack
receiver reads them, and ``--verify`` passes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from occupancy.sitefile import read_site_file
from simulators.scenario import load_scenario
from stack.embedded import Mosquitto
from stack.scenario import run_scenario
from tests.support.ingest import settings_for

pytestmark = pytest.mark.mosquitto


def test_the_lorawan_example_verifies(database: str, broker: Mosquitto, topic_prefix: str,
                                      examples_dir: Path, tmp_path: Path) -> None:
    scenario = load_scenario(examples_dir / "scenarios" / "lorawan.yaml")
    scenario = scenario.model_copy(update={"speed": 2880.0})  # the same 4 hours in 5 s
    site = read_site_file(examples_dir / "scenarios" / "lorawan-lot.yaml")
    started = time.monotonic()
    chain = asyncio.run(run_scenario(scenario, [site], settings_for(database, broker.url, topic_prefix),
                                     data_dir=tmp_path))
    real = time.monotonic() - started
    assert chain.verdict is not None and chain.play is not None
    text = chain.verdict.text()
    print(text, f"\nreal {real:.1f}s, {chain.play.events} events")
    assert chain.verdict.ok, text
    assert chain.verdict.compared >= 200  # 60 spaces, now + 3 checkpoints, a few excused
    (counts,) = chain.play.lorawan.values()
    published = chain.engine.lorawan.published if chain.engine.lorawan else {}
    assert counts.uplinks == published["up"] > 500
    assert counts.duplicates == published["duplicate"] > 0
    assert counts.late == published["late"] > 0
    assert counts.joins == counts.fcnt_resets == 20  # the Nwave row rejoined at 02:00
    assert counts.unknown_devices == counts.undecodable == counts.malformed == 0
    assert chain.play.lorawan_missing == 0 and chain.engine.late_readings == 0
    assert real < 30
