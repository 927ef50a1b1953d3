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

from tests.support.database import count
from tests.support.ingest import IngestProcess, reap
from tests.support.mqtt import publish
from tests.support.registry import batches, events_topic, make_events, seed_registry

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _no_ingest_left_behind():  # type: ignore[no-untyped-def]
    yield
    reap()

# a small window of unacknowledged messages: the broker holds the rest
SETTINGS = {"batch_max_messages": "20", "queue_max_messages": "100"}


async def _wait_rows(db: asyncpg.Connection, at_least: int, timeout: float, proc: IngestProcess) -> int:
    n = 0
    for _ in range(int(timeout * 20)):
        n = await count(db, "SELECT count(*) FROM occupancy_events")
        if n >= at_least:
            return n
        await asyncio.sleep(0.05)
    raise TimeoutError(f"only {n} rows after {timeout}s (want {at_least})\n{proc.log[-2000:]}")


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
        seen = await _wait_rows(db, 3000, 60, proc)
        proc.proc.send_signal(sig)
        code = await asyncio.to_thread(proc.proc.wait, 30)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), proc.log[-2000:]
        before = await count(db, "SELECT count(*) FROM occupancy_events")
        assert seen <= before < len(events), "the stop must land mid-stream"
        await asyncio.to_thread(sender.join, 120)
        proc = IngestProcess(database, broker.url, topic_prefix, client_id, **SETTINGS)
        await _wait_rows(db, len(events), 120, proc)
        await asyncio.sleep(1.0)  # anything more would be a duplicate
        assert await count(db, "SELECT count(*) FROM occupancy_events") == len(events)
        assert await count(db, "SELECT min(seq) FROM occupancy_events") == 1
        assert await count(db, "SELECT max(seq) FROM occupancy_events") == len(events)
    finally:
        if proc.alive():
            proc.stop()
