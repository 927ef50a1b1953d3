"""Attacks on a running ingest beyond single poison messages: floods that
would hold memory, messages that would make one transaction lock hundreds of
partitions, and topics that would make dead letters large. Real Mosquitto and
PostgreSQL; each test names the attack."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.support.database import count, has_seq
from tests.support.ingest import IngestProcess, reap, running_ingest, settings_for
from tests.support.mqtt import publish
from tests.support.registry import SPACES, batches, events_topic, make_events, seed_registry
from tests.support.waiting import wait_until

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


async def _most_locks_held(dsn: str, done: asyncio.Event, reader: int) -> int:
    """The most locks a session of the database held at once, polled until ``done``;
    not counting this poller or the test's ``reader`` (a count over all partitions)."""
    con = await asyncpg.connect(dsn)
    most = 0
    try:
        while not done.is_set():
            most = max(most, int(await con.fetchval(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM pg_locks "
                "WHERE pid NOT IN (pg_backend_pid(), $1) AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) GROUP BY pid) l", reader)))
    finally:
        await con.close()
    return most


async def test_one_message_with_an_event_on_each_of_400_days_locks_few_partitions_at_a_time(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    """Inside the window, but each day a partition: one transaction would lock them all."""
    await seed_registry(database)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    days = 399  # the default retention is 400 days
    events = [replace(e, at=t0 - timedelta(days=i))
              for i, e in enumerate(make_events(days, spaces=SPACES[:1]))]
    done = asyncio.Event()
    async with running_ingest(settings_for(database, broker.url, topic_prefix)):
        poller = asyncio.create_task(_most_locks_held(database, done, db.get_server_pid()))
        try:
            await asyncio.to_thread(publish, broker.url, [(events_topic(topic_prefix),
                                                           batches(events, days)[0])])
            await wait_until(lambda: _stored(db, days), timeout=120)
        finally:
            done.set()
            with contextlib.suppress(Exception):
                most = await poller
    assert await count(db, "SELECT count(*) FROM dead_letters") == 0
    state = await db.fetchrow("SELECT seq, observed_at FROM space_state")
    assert (state["seq"], state["observed_at"]) == (1, t0)  # the newest observation
    assert most < 400, f"one session held {most} locks at once"


async def _stored(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM occupancy_events") >= n


async def test_topic_of_60000_characters_makes_a_dead_letter_of_bounded_size(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    """MQTT allows 65,535 bytes of topic; a level of random text matches ``+``."""
    await seed_registry(database)
    long_topic = f"{topic_prefix}/{os.urandom(30_000).hex()}/gw1/events"
    marker = batches(make_events(1), 1)[0]
    async with running_ingest(settings_for(database, broker.url, topic_prefix)):
        await asyncio.to_thread(publish, broker.url, [(long_topic, b"{}"),
                                                      (events_topic(topic_prefix), marker)])
        await wait_until(lambda: has_seq(db, 1))
        await wait_until(lambda: _stored_dead(db))
    row = await db.fetchrow("SELECT reason, topic, pg_column_size(d.*) AS size FROM dead_letters d")
    assert row["reason"] == "bad_topic"
    assert long_topic.startswith(row["topic"]) and len(row["topic"]) == 1024
    assert row["size"] < 4096


async def _stored_dead(db: asyncpg.Connection) -> bool:
    return await count(db, "SELECT count(*) FROM dead_letters") > 0
