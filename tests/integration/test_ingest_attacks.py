"""Attacks on a running ingest beyond single poison messages: floods that
would hold memory, messages that would make one transaction lock hundreds of
partitions, and topics that would make dead letters large. Real Mosquitto and
PostgreSQL; each test names the attack."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest

from tests.integration.ingest_procs import IngestProcess, reap
from tests.integration.support import (
    batches,
    events_topic,
    has_seq,
    make_events,
    publish,
    seed_registry,
    wait_until,
)

pytestmark = pytest.mark.mosquitto


@pytest.fixture(autouse=True)
def _no_ingest_left_behind():  # type: ignore[no-untyped-def]
    yield
    reap()


async def _a_writer_waits(db: asyncpg.Connection) -> bool:
    """True once a session of this database waits for a lock (ingest's commit, stalled)."""
    return bool(await db.fetchval(
        "SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"))


async def test_qos0_flood_of_1_mib_messages_during_a_stalled_commit_keeps_ingest_memory_bounded(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    """QoS 0 has no broker in-flight limit: only ingest's byte bound stops it reading."""
    await seed_registry(database)
    proc = IngestProcess(database, broker.url, topic_prefix, f"{topic_prefix[:11]}-mem",
                         writers="1").wait_ready()
    baseline = proc.rss_mb()
    t = events_topic(topic_prefix)
    stall = db.transaction()
    await stall.start()
    try:
        await db.execute("LOCK TABLE space_state IN EXCLUSIVE MODE")  # the next commit waits
        await asyncio.to_thread(publish, broker.url, [(t, batches(make_events(1), 1)[0])])
        await wait_until(lambda: _a_writer_waits(db))
        garbage = [(t, os.urandom(1_000_000)) for _ in range(300)]
        await asyncio.to_thread(publish, broker.url, garbage, qos=0)
        await asyncio.to_thread(proc.wait_for_line, "reading paused")
        held = proc.rss_mb()
    finally:
        await stall.rollback()
    marker = batches(make_events(1, start_seq=2), 1)[0]
    await asyncio.to_thread(publish, broker.url, [(t, marker)])
    await wait_until(lambda: has_seq(db, 2))
    assert await has_seq(db, 1)
    assert held - baseline < 150, f"ingest held {held - baseline:.0f} MB more while stalled"
    proc.stop()
