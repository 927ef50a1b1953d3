"""No single point of failure in the database: the primary is lost under load.

A primary and its synchronous standby (tests/support/pgpair.py, the
deployment's config) serve one database; ingest (a real ``parkbazaar ingest``
process) and the API (its pool and its LISTEN change feed) are given only the
multi-host DSN. While a gateway publishes, the primary's machine is lost (every
PostgreSQL process SIGKILLed) and the standby is promoted, as a failover
manager would. Neither service is restarted or told anything.

Checked once nothing more can arrive (a marker published behind the load is
stored and ingest has drained): every event the broker acknowledged to the
publisher is in the new primary exactly once; the API serves the counts the
database holds; its change feed hears ingest's notifications from the new
primary. The figures are printed (``pytest -s``) and recorded in docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from ingest.migrate import migrate_dsn
from ingest.worker import is_transient
from tests.support.api import app_for, asgi_client
from tests.support.database import count, event_rows
from tests.support.ingest import Feeder, IngestProcess, drained_after_marker, reap
from tests.support.pgpair import Pair, start_pair
from tests.support.registry import SITE, TENANT, batches, events_topic, make_events, seed_registry
from tests.support.waiting import wait_rows, wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

EVENTS, PER_MESSAGE = 30_000, 10  # 3 000 messages, paced over ~15 s


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = start_pair()
    yield made
    reap()
    made.remove()


async def api_counts(client: Any) -> dict[str, int] | None:
    response = await client.get(f"/v1/sites/{TENANT}/{SITE}")
    if response.status_code != 200:
        return None
    body = response.json()
    return {k: body[k] for k in ("total", "free", "occupied", "unknown")}


async def db_counts(con: asyncpg.Connection, stale_after_s: int) -> dict[str, int]:
    """The counting rule of docs/api.md, straight from ``space_state``."""
    fresh = "ss.observed_at > now() - make_interval(secs => $1)"
    row = await con.fetchrow(
        f"SELECT count(*) AS total, count(*) FILTER (WHERE ss.state = 'free' AND {fresh}) AS free,"
        f" count(*) FILTER (WHERE ss.state = 'occupied' AND {fresh}) AS occupied"
        " FROM spaces sp LEFT JOIN space_state ss ON ss.space_id = sp.id", float(stale_after_s))
    assert row is not None
    return {**dict(row), "unknown": row["total"] - row["free"] - row["occupied"]}


async def test_primary_lost_under_load_standby_promoted_nothing_lost_nothing_twice(
        pair: Pair, mosquitto_factory: Any, topic_prefix: str) -> None:
    dsn = pair.dsn()
    await migrate_dsn(dsn, "plain")
    await seed_registry(dsn)
    broker = mosquitto_factory()
    events = make_events(EVENTS)
    stream = [(events_topic(topic_prefix), p) for p in batches(events, PER_MESSAGE)]
    proc = IngestProcess(dsn, broker.url, topic_prefix, f"{topic_prefix[:11]}-ha")
    await asyncio.to_thread(proc.wait_ready)
    notified: list[tuple[float, set[int]]] = []
    app = app_for(dsn)
    async with asgi_client(app) as api:
        app.state.feed.on_change.append(lambda sites: notified.append((time.monotonic(), sites)))
        assert await api_counts(api) is not None
        feeder = Feeder(broker.url, stream, chunk=50, pause_s=0.25)
        feeder.start()
        old = await asyncpg.connect(pair.only(pair.primary))
        await wait_rows(old, EVENTS // 5, 60, lambda: proc.log[-2000:])
        await old.close()

        killed_at = pair.kill_primary()
        sent_at_kill = feeder.sent
        # a standby that is reachable but not yet primary is no place to write: transient
        with pytest.raises(asyncpg.TargetServerAttributeNotMatched) as refused:
            await asyncpg.connect(pair.only(pair.standby))
        assert is_transient(refused.value)
        during = await api.get(f"/v1/sites/{TENANT}/{SITE}")  # no primary: unavailable, not broken
        assert (during.status_code, "retry-after" in during.headers) == (503, True), during.text
        pair.promote()
        promoted_at = time.monotonic()

        new = await asyncpg.connect(pair.only(pair.standby))
        try:
            at_promotion = await event_rows(new)

            async def ingest_writes_again() -> bool:
                return await event_rows(new) > at_promotion

            await wait_until(ingest_writes_again, 60, lambda: proc.log[-3000:])
            recovered_at = time.monotonic()
            await asyncio.to_thread(feeder.join, 120)
            assert feeder.error is None and feeder.sent == len(stream)
            await wait_rows(new, EVENTS, 120, lambda: proc.log[-3000:])
            log = await drained_after_marker(new, broker.url, topic_prefix, proc)

            stored = await event_rows(new)
            distinct = await count(new, "SELECT count(DISTINCT (gateway_id, seq)) FROM occupancy_events")
            assert (stored, distinct) == (EVENTS, EVENTS), "every acknowledged event, each once"
            assert "database unavailable" in log  # ingest saw the loss and retried by itself

            async def feed_hears_new_primary() -> bool:
                return any(at > promoted_at and sites for at, sites in notified)

            await wait_until(feed_hears_new_primary, 30, "a notification from the new primary")
            stale_after_s = (await api.get(f"/v1/sites/{TENANT}/{SITE}")).json()["stale_after_s"]

            async def api_serves_database_counts() -> bool:
                return await api_counts(api) == await db_counts(new, stale_after_s)

            await wait_until(api_serves_database_counts, 30, "the API's counts from the new primary")
        finally:
            await new.close()
    duplicates = proc.totals()["duplicates"]
    print(f"\nfailover: published {len(stream) * PER_MESSAGE} events in {len(stream)} messages"
          f" ({sent_at_kill * PER_MESSAGE} before the kill), acknowledged {feeder.sent * PER_MESSAGE},"
          f" stored {stored}, lost {EVENTS - distinct}, duplicated {stored - distinct}"
          f" (redelivered and recognised by ingest: {duplicates});"
          f" kill→promoted {promoted_at - killed_at:.1f}s,"
          f" kill→ingest writing {recovered_at - killed_at:.1f}s")
