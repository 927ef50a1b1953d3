"""Ingest killed (SIGKILL) or stopped (SIGTERM: drains) mid-stream and restarted:
nothing lost, nothing twice.

The broker is a mosquitto of this test's own (queue limits raised); ingest runs
as a real ``parkbazaar ingest`` process with a fixed client id, so its
persistent session makes the broker redeliver what was never acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading

import asyncpg
import pytest

from tests.integration.support import batches, count, events_topic, make_events, publish, seed_registry

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def _start_ingest(dsn: str, url: str, prefix: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PARKBAZAAR_DATABASE_URL": dsn, "PARKBAZAAR_MQTT_URL": url,
           "PARKBAZAAR_TOPIC_PREFIX": prefix, "PARKBAZAAR_INGEST__CLIENT_ID": "crash-test-ingest",
           "PARKBAZAAR_INGEST__BATCH_MAX_MESSAGES": "20",
           # a small window of unacknowledged messages: the broker holds the rest
           "PARKBAZAAR_INGEST__QUEUE_MAX_MESSAGES": "100"}
    return subprocess.Popen([sys.executable, "-m", "parkbazaar", "ingest"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _wait_rows(db: asyncpg.Connection, at_least: int, timeout: float) -> int:
    for _ in range(int(timeout * 20)):
        n = await count(db, "SELECT count(*) FROM occupancy_events")
        if n >= at_least:
            return n
        await asyncio.sleep(0.05)
    raise TimeoutError(f"only {n} rows after {timeout}s (want {at_least})")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_stopped_mid_stream_loses_nothing_and_stores_nothing_twice(
        database: str, db: asyncpg.Connection, mosquitto_factory, topic_prefix: str,
        sig: signal.Signals) -> None:
    await seed_registry(database)
    broker = mosquitto_factory()
    events = make_events(20_000)
    stream = [(events_topic(topic_prefix), p) for p in batches(events, 10)]
    proc = _start_ingest(database, broker.url, topic_prefix)
    try:
        await asyncio.sleep(1.5)  # connected and subscribed (persistent session exists)
        sender = threading.Thread(target=publish, args=(broker.url, stream))
        sender.start()
        seen = await _wait_rows(db, 3000, timeout=60)
        proc.send_signal(sig)
        assert proc.wait(30) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
        before = await count(db, "SELECT count(*) FROM occupancy_events")
        assert seen <= before < len(events), "the kill must land mid-stream"
        await asyncio.to_thread(sender.join, 120)
        proc = _start_ingest(database, broker.url, topic_prefix)
        await _wait_rows(db, len(events), timeout=120)
        await asyncio.sleep(1.0)  # anything more would be a duplicate
        assert await count(db, "SELECT count(*) FROM occupancy_events") == len(events)
        assert await count(db, "SELECT min(seq) FROM occupancy_events") == 1
        assert await count(db, "SELECT max(seq) FROM occupancy_events") == len(events)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
