"""Real frames as a camera: PKLot UFPR05's Sunday stream (an empty lot all day),
replayed at its capture times through the real detector and the gateway's occupancy
state machine (three frames confirm), then MQTT, ingest, PostgreSQL and the API; the verdict passes and the
API shows every bay free, with few or no false changes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from occupancy.model import SpaceState
from occupancy.sitefile import read_site_file
from simulators.scenario import load_scenario
from stack.embedded import Mosquitto
from stack.scenario import run_scenario
from tests.support.ingest import settings_for

pytestmark = pytest.mark.mosquitto
SITE = ("ufpr", "ufpr05")


def test_the_ufpr05_sunday_stream_replays_through_the_detector_to_the_api(
        database: str, broker: Mosquitto, topic_prefix: str, examples_dir: Path,
        shared_dir: Path, tmp_path: Path) -> None:
    stream = shared_dir / "datasets" / "pklot-ufpr05" / "stream-2013-02-24"
    if not stream.is_dir():
        pytest.skip(f"{stream} is missing")
    scenario = load_scenario(examples_dir / "scenarios" / "ufpr05-replay.yaml")
    camera = scenario.cameras[0].model_copy(update={"replay": stream})
    scenario = scenario.model_copy(update={"cameras": [camera]})
    sf = read_site_file(examples_dir / "scenarios" / "ufpr05.yaml")
    started = time.monotonic()
    chain = asyncio.run(run_scenario(scenario, [sf], settings_for(database, broker.url, topic_prefix),
                                     data_dir=tmp_path, report_dir=tmp_path / "report"))
    real = time.monotonic() - started
    assert chain.verdict is not None and chain.play is not None and chain.engine is not None
    print(chain.verdict.text(), f"\nreal {real:.1f}s, {chain.play.events} events, "
          f"{getattr(chain.engine.cameras, 'frames', 0)} frames")
    assert getattr(chain.engine.cameras, "frames", 0) == 147
    assert chain.verdict.ok, chain.verdict.text()
    assert chain.verdict.compared >= 40 * 3  # now + 2 checkpoints
    sent = chain.play.sent[("ufpr", "gw-ufpr05")]
    changes = [e for e in sent if e.kind.value == "change"]
    assert {e.device for e in changes} == {"cam-ufpr05"}
    first = {e.space.space for e in changes}
    assert len(first) == 40  # every bay confirmed by the camera
    false_changes = [e for e in changes if e.state is SpaceState.OCCUPIED]
    print(f"{len(changes)} camera changes, {len(false_changes)} to occupied")
    assert len(false_changes) <= 4, [(str(e.space), e.observed_at) for e in false_changes]
    truth = chain.engine.truth
    end = chain.engine.stamp(chain.engine.end)
    final = {sp: truth.state_at((*SITE, sp), end) for sp in first}
    assert sum(s is SpaceState.FREE for s in final.values()) >= 38, final  # the lot is empty
    assert [p.name for p in chain.reports] == ["ufpr-ufpr05.png"]
