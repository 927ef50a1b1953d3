"""What ingest refuses stays bounded and costs one message: a batch the database
refuses is split down to the message it refuses; a poison message redelivered
to a restarted ingest is dead-lettered once; dead letters are capped in rate,
size and age. Real Mosquitto and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from ingest.maintenance import run_maintenance
from ingest.plan import DeadLetter, Received
from ingest.service import Ingest
from ingest.store import WritePolicy, write_dead_letters
from tests.support.database import count, has_seq
from tests.support.ingest import IngestProcess, reap, running_ingest, settings_for
from tests.support.mqtt import publish
from tests.support.registry import GW, SITE, TENANT, batches, events_topic, make_events, seed_registry
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto


@pytest.fixture(autouse=True)
def _no_ingest_left_behind():  # type: ignore[no-untyped-def]
    yield
    reap()


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_database_refusing_one_message_dead_letters_only_it(
        database: str, db: asyncpg.Connection, topic_prefix: str) -> None:
    await seed_registry(database)
    settings = settings_for(database, "mqtt://127.0.0.1:1", topic_prefix)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        worker = Ingest(settings, pool)
        await worker.reload_registry()
        # a space deleted after ingest read the registry: its state row now breaks a foreign key
        await db.execute("DELETE FROM spaces WHERE slug = 'S-050'")
        payloads = batches(make_events(200, spaces=[f"S-{i:03d}" for i in range(1, 50)]), 4)
        payloads.insert(12, batches(make_events(2, start_seq=1000, spaces=["S-050"]), 2)[0])
        split_before = _metric("parkbazaar_ingest_split_batches_total")
        await worker.handle([Received(events_topic(topic_prefix), p) for p in payloads])
    finally:
        await pool.close()
    (dead,) = await db.fetch("SELECT reason, detail, payload FROM dead_letters")
    assert dead["reason"] == "store_error" and bytes(dead["payload"]) == payloads[12]
    assert "ForeignKeyViolationError" in json.loads(dead["detail"])["error"]
    stored = {r["seq"] for r in await db.fetch("SELECT seq FROM occupancy_events")}
    assert stored == set(range(1, 201))  # the other 50 messages of the batch
    assert _metric("parkbazaar_ingest_split_batches_total") > split_before
    assert worker.totals["dead"] == 1 and worker.totals["stored"] == 200


async def test_strangers_draining_the_shared_dead_letter_cap_cannot_cap_a_real_gateways_refused_message(
        database: str, db: asyncpg.Connection, topic_prefix: str) -> None:
    await seed_registry(database)
    settings = settings_for(database, "mqtt://127.0.0.1:1", topic_prefix, dead_letter_burst=1,
                            dead_letter_rate_per_s=0)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        worker = Ingest(settings, pool)
        await worker.reload_registry()
        strangers = [Received(events_topic(topic_prefix, f"gw-ghost-{i}"), b"nope") for i in range(5)]
        await worker.handle(strangers)  # the one shared bucket of unknown senders is now empty
        await db.execute("DELETE FROM spaces WHERE slug = 'S-050'")  # the database will refuse it
        refused = batches(make_events(1, spaces=["S-050"]), 1)[0]
        await worker.handle([Received(events_topic(topic_prefix), refused)])
    finally:
        await pool.close()
    rows = await db.fetch("SELECT reason, tenant, gateway FROM dead_letters ORDER BY id")
    assert [tuple(r) for r in rows] == [("malformed_json", TENANT, "gw-ghost-0"),
                                        ("store_error", TENANT, GW)]


async def test_dead_letter_flood_is_capped_and_real_events_still_flow(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    await seed_registry(database)
    garbage = [(events_topic(topic_prefix), b"{" + b"x" * 200_000 + str(i).encode())
               for i in range(150)]
    strangers = [(events_topic(topic_prefix, f"gw-ghost-{i}"), b"nope") for i in range(150)]
    capped_before = _metric("parkbazaar_ingest_dead_letters_capped_total", reason="malformed_json")
    settings = settings_for(database, broker.url, topic_prefix, dead_letter_burst=20,
                            dead_letter_rate_per_s=0.01, dead_letter_max_payload_bytes=1024)
    async with running_ingest(settings) as task:
        await asyncio.to_thread(publish, broker.url, garbage + strangers)
        await asyncio.to_thread(publish, broker.url,
                                [(events_topic(topic_prefix), p) for p in batches(make_events(50), 10)])
        await wait_until(lambda: _rows(db, 50))
        await wait_until(lambda: _capped_since(capped_before, 130 + 130))
        assert not task.done()
    by_gateway = dict(await db.fetch("SELECT coalesce(gateway, '?'), count(*) FROM dead_letters "
                                     "GROUP BY 1"))
    assert by_gateway[GW] == 20  # gw1's bucket
    assert sum(n for g, n in by_gateway.items() if g.startswith("gw-ghost")) == 20  # one shared bucket
    sizes = {r["n"] for r in await db.fetch("SELECT length(payload) AS n FROM dead_letters "
                                            "WHERE gateway = $1", GW)}
    assert sizes == {1024}


async def _rows(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM occupancy_events") >= n


async def _capped_since(before: float, n: int) -> bool:
    reasons = ("malformed_json", "unknown_gateway")
    after = sum(_metric("parkbazaar_ingest_dead_letters_capped_total", reason=r) for r in reasons)
    return after - before >= n


async def test_dead_letters_past_their_retention_are_deleted_by_maintenance(
        db: asyncpg.Connection) -> None:
    now = datetime.now(UTC)
    await db.executemany(
        "INSERT INTO dead_letters (received_at, topic, payload, reason, payload_bytes, payload_sha256) "
        "VALUES ($1, 't', 'x', 'malformed_json', 1, sha256('x'))",
        [(now - timedelta(days=d),) for d in (30, 15, 13, 0)])
    report = await run_maintenance(db, now=now, retention_days=400, dead_letter_retention_days=14)
    assert report.dead_letters_dropped == 2
    kept = [r["age"] for r in await db.fetch(
        "SELECT extract(day FROM $1 - received_at)::int AS age FROM dead_letters ORDER BY 1", now)]
    assert kept == [0, 13]


POISON = {
    "huge_integer": b'{"v":1,"gateway":"gw1","boot":' + b"9" * 4301 + b',"events":[]}',
    "year_one": json.dumps({"v": 1, "gateway": GW, "boot": 1, "events": [
        {"seq": 1, "space": f"{SITE}/S-001", "state": "free", "at": "0001-01-01T00:00:00+01:00"}]}).encode(),
    "year_9999": json.dumps({"v": 1, "gateway": GW, "boot": 1, "events": [
        {"seq": 2, "space": f"{SITE}/S-001", "state": "free", "at": "9999-12-31T23:59:59-01:00"}]}).encode(),
    "minus_infinity": json.dumps({"v": 1, "gateway": GW, "boot": 1, "events": [
        {"seq": 3, "space": f"{SITE}/S-001", "state": "free", "at": "0001-01-01T00:00:00Z"}]}).encode(),
}


@pytest.mark.slow
async def test_redelivered_poison_is_dead_lettered_once_and_acknowledged(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    """The crash-loop of issue 11: poison reaches a worker with a persistent session,
    the worker is stopped and started again; nothing is redelivered, nothing dies."""
    await seed_registry(database)
    t = events_topic(topic_prefix)
    first, second, third = (batches(make_events(1, start_seq=s), 1)[0] for s in (101, 102, 103))
    proc = IngestProcess(database, broker.url, topic_prefix, "poison-ingest")
    await asyncio.to_thread(proc.wait_ready)
    await asyncio.to_thread(publish, broker.url, [(t, p) for p in POISON.values()] + [(t, first)])
    await wait_until(lambda: has_seq(db, 101))
    assert proc.alive(), proc.log[-2000:]
    await asyncio.to_thread(proc.stop)
    await asyncio.to_thread(publish, broker.url, [(t, second)])  # queued in the session
    proc = IngestProcess(database, broker.url, topic_prefix, "poison-ingest")
    await asyncio.to_thread(proc.wait_ready)
    await wait_until(lambda: has_seq(db, 102))
    await asyncio.to_thread(publish, broker.url, [(t, third)])
    await wait_until(lambda: has_seq(db, 103))
    assert proc.alive(), proc.log[-2000:]
    await asyncio.to_thread(proc.stop)
    rows = await db.fetch("SELECT payload_sha256, reason FROM dead_letters")
    assert sorted(bytes(r["payload_sha256"]) for r in rows) == sorted(
        hashlib.sha256(p).digest() for p in POISON.values())  # each once: acknowledged
    assert {r["reason"] for r in rows} == {"out_of_range"}


async def test_dead_letter_with_nul_and_lone_surrogate_text_is_stored(db: asyncpg.Connection) -> None:
    """PostgreSQL refuses NUL and lone surrogates in text and jsonb: a dead letter
    that carries them must still be written (else its batch could never commit)."""
    nasty = DeadLetter("t/\x00/\ud800", b"\x00\xff" * 5000, "bad_field",
                       {"error": "a\x00b\udfff", "\x00": ["\ud800"]}, "t1", "gw1")
    async with db.transaction():
        written = await write_dead_letters(db, [nasty], WritePolicy(max_payload_bytes=16))
    assert written.dead == ("bad_field",)
    row = await db.fetchrow("SELECT topic, payload, detail, payload_bytes FROM dead_letters")
    assert (row["topic"], bytes(row["payload"]), row["payload_bytes"]) == (
        "t/\ufffd/?", (b"\x00\xff" * 8), 10_000)
    assert json.loads(row["detail"]) == {"error": "a\ufffdb?", "\ufffd": ["?"]}
