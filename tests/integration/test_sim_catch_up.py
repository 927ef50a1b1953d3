"""The demo's real-clock day (issue 16, item 6): a site simulated with ``catch_up`` publishes
the day so far with its simulated times first — the first events at the start of the day,
not at the moment the run began — then runs live on the wall clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from occupancy.config import MqttUrl
from occupancy.sitefile import read_site_file
from occupancy.wire import decode_events
from simulators.runner import run_simulation
from stack.embedded import Mosquitto
from tests.support.mqtt import Subscriber

pytestmark = pytest.mark.mosquitto


def test_catch_up_stamps_the_day_so_far_with_its_own_times(
        broker: Mosquitto, topic_prefix: str, examples_dir: Path, tmp_path: Path) -> None:
    site_file = read_site_file(examples_dir / "shiraz.yaml")
    start = datetime.now(UTC) - timedelta(hours=2)
    sub = Subscriber(broker.url, topic_prefix)
    try:
        stats = asyncio.run(run_simulation(
            site_file=site_file, site_id="central-lot", gateway_id="gw-central-lot",
            mqtt=MqttUrl.parse(broker.url), prefix=topic_prefix, state_dir=tmp_path, speed=1,
            stop=asyncio.Event(), duration_s=0.5, start_at=start, catch_up=True, heartbeat_s=300))
        sent = stats.node.acked
        sub.wait(lambda: len(sub.seqs()) >= sent)
        times = sorted(e.at for t, p, _ in sub.received() if t.endswith("/events")
                       for e in decode_events(p).events)
    finally:
        sub.close()
    assert times[0] - start < timedelta(minutes=1)  # the morning's own first readings
    assert times[-1] <= datetime.now(UTC)  # never ahead of the wall clock
    # heartbeats every 5 simulated minutes kept all 128 bays known through the two hours
    assert stats.heartbeats >= 128 * 20 and stats.sim_end - datetime.now(UTC) < timedelta(seconds=5)
