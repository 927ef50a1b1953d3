"""Ingest at scale and through failures, on real services the tests start themselves.

- two workers on one shared subscription split the load, totals exact;
- PostgreSQL stopped for 30 s under load: ingest waits, memory stays bounded,
  nothing is lost or stored twice, and it recovers without a restart;
- the broker restarted under load (events from a real gateway outbox);
- ingest SIGKILLed five times during one run;
- retention drops only whole partitions past the bound.

"Nothing twice" is checked once nothing more can arrive: after a marker published
behind the load is stored and ingest has drained (``drained_after_marker``), or
after the workers' metrics show every published message processed; never after
a sleep.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from gateway.node import GatewayNode
from ingest.maintenance import run_maintenance
from ingest.migrate import migrate_dsn
from occupancy.config import MqttUrl
from occupancy.model import Source, SpaceState
from stack.embedded import EmbeddedPostgres
from tests.support.database import count, event_rows
from tests.support.ingest import Feeder, IngestProcess, drained_after_marker, reap
from tests.support.registry import GW, SPACES, TENANT, batches, events_topic, make_events, seed_registry
from tests.support.waiting import wait_rows, wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _no_ingest_left_behind():  # type: ignore[no-untyped-def]
    yield
    reap()


def _logs(*procs: IngestProcess) -> Callable[[], str]:
    return lambda: "\n".join(p.log[-2000:] for p in procs)


async def _assert_exact(db: asyncpg.Connection, n: int) -> None:
    """Exactly ``n`` events, each once (call it once nothing more can arrive)."""
    assert await event_rows(db) == n
    assert await count(db, "SELECT count(DISTINCT (gateway_id, seq)) FROM occupancy_events") == n


async def _assert_states_are_newest(db: asyncpg.Connection, events: list) -> None:  # type: ignore[type-arg]
    newest = {}
    for e in events:
        newest[str(e.space.space)] = e
    rows = await db.fetch("SELECT sp.slug, ss.state, ss.seq FROM space_state ss "
                          "JOIN spaces sp ON sp.id = ss.space_id")
    assert {r["slug"]: (r["state"], r["seq"]) for r in rows} == {
        k: (e.state.value, e.seq) for k, e in newest.items()}


async def test_two_workers_on_a_shared_subscription_store_each_event_once(
        database: str, db: asyncpg.Connection, mosquitto_factory, topic_prefix: str) -> None:
    await seed_registry(database)
    broker = mosquitto_factory()
    events = make_events(100_000)
    payloads = batches(events, 50)
    stream = payloads + random.Random(3).sample(payloads, 200)  # 10 000 duplicates
    random.Random(4).shuffle(stream)
    workers = [IngestProcess(database, broker.url, topic_prefix, f"{topic_prefix[:11]}-w{i}")
               for i in (1, 2)]
    for w in workers:
        await asyncio.to_thread(w.wait_ready)
    feeder = Feeder(broker.url, [(events_topic(topic_prefix), p) for p in stream], chunk=500)
    feeder.start()
    await wait_rows(db, len(events), 180, _logs(*workers))
    await asyncio.to_thread(feeder.join, 60)
    assert feeder.error is None

    async def all_processed() -> bool:  # duplicates included: nothing is left at the broker
        return sum(await asyncio.gather(*(asyncio.to_thread(w.processed) for w in workers))) >= len(stream)

    await wait_until(all_processed, 60, _logs(*workers))
    for w in workers:
        await asyncio.to_thread(w.stop)
    await _assert_exact(db, len(events))
    await _assert_states_are_newest(db, events)
    totals = [w.totals() for w in workers]
    assert all(t["stored"] > 0 for t in totals), f"both workers must take a share: {totals}"
    assert sum(t["stored"] for t in totals) == len(events)
    assert sum(t["messages"] for t in totals) == len(stream)


@pytest.fixture
def own_postgres(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = EmbeddedPostgres(tmp_path / "pg").start()
    yield server
    server.stop()


async def test_postgres_stopped_for_30_s_under_load(
        own_postgres: EmbeddedPostgres, mosquitto_factory, topic_prefix: str) -> None:
    dsn = own_postgres.dsn()
    await migrate_dsn(dsn, "plain")
    await seed_registry(dsn)
    broker = mosquitto_factory()
    events = make_events(60_000)
    stream = [(events_topic(topic_prefix), p) for p in batches(events, 20)]
    proc = IngestProcess(dsn, broker.url, topic_prefix, f"{topic_prefix[:11]}-pg",
                         queue_max_messages="500")
    await asyncio.to_thread(proc.wait_ready)
    feeder = Feeder(broker.url, stream, chunk=100, pause_s=0.05)  # ~40 s of load
    feeder.start()
    db = await asyncpg.connect(dsn)
    await wait_rows(db, 2000, 60, _logs(proc))
    await db.close()
    baseline = proc.rss_mb()
    own_postgres.stop()
    peak = baseline
    for _ in range(30):
        await asyncio.sleep(1.0)
        peak = max(peak, proc.rss_mb())
        assert proc.alive(), f"ingest must wait for the database, not exit:\n{proc.log[-2000:]}"
    own_postgres.start()
    db = await asyncpg.connect(dsn)
    try:
        await asyncio.to_thread(feeder.join, 120)
        assert feeder.error is None
        await wait_rows(db, len(events), 120, _logs(proc))
        log = await drained_after_marker(db, broker.url, topic_prefix, proc)
        await _assert_exact(db, len(events))
    finally:
        await db.close()
    assert "database unavailable" in log  # each retry is logged
    assert peak - baseline < 80, f"memory grew {peak - baseline:.0f} MB while the database was away"


async def test_broker_restarted_under_load_with_a_real_gateway(
        database: str, db: asyncpg.Connection, mosquitto_factory, topic_prefix: str,
        tmp_path: Path) -> None:
    await seed_registry(database)
    broker = mosquitto_factory()
    proc = IngestProcess(database, broker.url, topic_prefix, f"{topic_prefix[:11]}-br")
    await asyncio.to_thread(proc.wait_ready)
    node = GatewayNode(TENANT, GW, tmp_path / "outbox.sqlite", MqttUrl.parse(broker.url),
                       topic_prefix, reconnect_max_s=1)
    await asyncio.to_thread(node.start)
    observed = 0
    t0 = datetime.now(UTC) - timedelta(minutes=10)

    def observe(n: int) -> None:
        nonlocal observed
        for _ in range(n):
            space = SPACES[observed % len(SPACES)]
            state = SpaceState.OCCUPIED if observed % 2 else SpaceState.FREE
            node.observe(_ref(space), state, t0 + timedelta(milliseconds=observed), Source.SENSOR)
            observed += 1

    try:
        await asyncio.to_thread(observe, 3000)
        await wait_rows(db, 1000, 30, _logs(proc))
        broker.stop()
        await asyncio.to_thread(observe, 3000)  # while the broker is away
        await asyncio.sleep(2.0)
        broker.start()
        await asyncio.to_thread(observe, 3000)
        assert await asyncio.to_thread(node.flush, 60), "the outbox must drain"
        await wait_rows(db, observed, 60, _logs(proc))
        await drained_after_marker(db, broker.url, topic_prefix, proc)
        await _assert_exact(db, observed)
    finally:
        await asyncio.to_thread(node.stop)
        if proc.alive():
            proc.stop()


def _ref(space: str):  # type: ignore[no-untyped-def]
    from occupancy.ids import SpaceRef

    return SpaceRef.parse(f"lot1/{space}")


async def test_ingest_sigkilled_five_times_in_one_run(
        database: str, db: asyncpg.Connection, mosquitto_factory, topic_prefix: str) -> None:
    await seed_registry(database)
    broker = mosquitto_factory()
    events = make_events(40_000)
    stream = [(events_topic(topic_prefix), p) for p in batches(events, 10)]
    client_id = f"{topic_prefix[:11]}-k"
    proc = IngestProcess(database, broker.url, topic_prefix, client_id, queue_max_messages="200")
    await asyncio.to_thread(proc.wait_ready)
    feeder = Feeder(broker.url, stream, chunk=200, pause_s=0.05)
    feeder.start()
    for kill in range(5):
        await wait_rows(db, (kill + 1) * 4000, 90, _logs(proc))
        proc.kill()
        proc = IngestProcess(database, broker.url, topic_prefix, client_id,
                             queue_max_messages="200")
    await asyncio.to_thread(feeder.join, 120)
    await wait_rows(db, len(events), 120, _logs(proc))
    await drained_after_marker(db, broker.url, topic_prefix, proc)
    await _assert_exact(db, len(events))
    await _assert_states_are_newest(db, events)


async def test_retention_drops_only_whole_partitions_past_the_bound(
        db: asyncpg.Connection) -> None:
    await seed_registry_for(db)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    await db.execute("SELECT ensure_event_partitions($1, $2)",
                     (now - timedelta(days=12)).date(), now.date())
    days_back = [11, 10, 9, 3, 0]
    await db.executemany(
        "INSERT INTO occupancy_events (observed_at, gateway_id, seq, space_id, state, source) "
        "VALUES ($1, 1, $2, 1, 'free', 'sensor')",
        [(now - timedelta(days=d, hours=1), i + 1) for i, d in enumerate(days_back)])
    report = await run_maintenance(db, now=now, retention_days=10)
    assert report.ran and report.dropped == 2  # Nov 14 and 15, wholly older than Nov 16 12:00
    kept = await db.fetch("SELECT observed_at FROM occupancy_events ORDER BY 1")
    # day 10's event is older than the bound, but its partition (Nov 16) is not wholly past it
    assert [k["observed_at"] for k in kept] == [now - timedelta(days=d, hours=1)
                                                for d in (10, 9, 3, 0)]
    assert await db.fetchval("SELECT to_regclass($1)",
                             f"occupancy_events_{(now + timedelta(days=7)).strftime('%Y%m%d')}")


async def seed_registry_for(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO tenants (slug, name) VALUES ('t', 'T')")
    await db.execute("INSERT INTO sites (tenant_id, slug, kind, name, lat, lon) "
                     "VALUES (1, 's', 'parking', 'S', 29.6, 52.5)")
    await db.execute("INSERT INTO spaces (site_id, slug) VALUES (1, 'A-1')")
    await db.execute("INSERT INTO gateways (tenant_id, slug) VALUES (1, 'g')")
