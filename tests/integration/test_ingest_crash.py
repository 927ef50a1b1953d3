"""Ingest killed (SIGKILL) or stopped (SIGTERM: drains) mid-stream and restarted:
nothing lost, nothing twice.

The broker is a mosquitto of this test's own (queue limits raised); ingest runs
as a real ``parkbazaar ingest`` process with a fixed client id, so its
persistent session makes the broker redeliver what was never acknowledged.
"""

from __future__ import annotations

import asyncio
import signal
import threading

import asyncpg
import pytest

from tests.support.database import count, event_rows
from tests.support.ingest import IngestProcess, drained_after_marker, reap
from tests.support.mqtt import publish
from tests.support.registry import batches, events_topic, make_events, seed_registry
from tests.support.waiting import wait_rows

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _no_ingest_left_behind():  # type: ignore[no-untyped-def]
    yield
    reap()

# a small window of unacknowledged messages: the broker holds the rest
SETTINGS = {"batch_max_messages": "20", "queue_max_messages": "100"}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_stopped_mid_stream_loses_nothing_and_stores_nothing_twice(
        database: str, db: asyncpg.Connection, mosquitto_factory, topic_prefix: str,
        sig: signal.Signals) -> None:
    await seed_registry(database)
    broker = mosquitto_factory()
    events = make_events(20_000)
    stream = [(events_topic(topic_prefix), p) for p in batches(events, 10)]
    client_id = "crash-test-ingest"
    proc = IngestProcess(database, broker.url, topic_prefix, client_id, **SETTINGS)
    try:
        await asyncio.to_thread(proc.wait_ready)
        sender = threading.Thread(target=publish, args=(broker.url, stream))
        sender.start()
        seen = await wait_rows(db, 3000, 60, lambda: proc.log[-2000:])
        proc.proc.send_signal(sig)
        code = await asyncio.to_thread(proc.proc.wait, 30)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), proc.log[-2000:]
        before = await count(db, "SELECT count(*) FROM occupancy_events")
        assert seen <= before < len(events), "the stop must land mid-stream"
        await asyncio.to_thread(sender.join, 120)
        proc = IngestProcess(database, broker.url, topic_prefix, client_id, **SETTINGS)
        await wait_rows(db, len(events), 120, lambda: proc.log[-2000:])
        # everything published before the marker is written once the marker is stored
        # and ingest has drained: only then can "nothing twice" be checked
        await drained_after_marker(db, broker.url, topic_prefix, proc)
        assert await event_rows(db) == len(events)
        assert await count(db, "SELECT count(DISTINCT seq) FROM occupancy_events") == len(events)
        assert await count(db, "SELECT min(seq) FROM occupancy_events") == 1
    finally:
        if proc.alive():
            proc.stop()
