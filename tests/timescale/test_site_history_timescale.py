"""The history rollup (migration 007) on PGlite+TimescaleDB, against plain PostgreSQL.

The continuous aggregate must hold exactly the rows the plain flavor's table
holds, and site_history() must answer the same on both and equal the event
series, after the same script (gaps, ties, resends, a backlog of late events,
a UTC midnight) is played on both. PGlite runs no background jobs, so
refresh_history() calls refresh_continuous_aggregate as the policy would.
One PGlite serves the module, one connection at a time; each test has its own
tenant in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from ingest.history import refresh_history
from ingest.migrate import migrate_dsn
from stack.db import connected
from tests.support.history import (
    END,
    FIVE,
    MIDNIGHT,
    QUERIES,
    SPACES,
    Ev,
    expected_rollup,
    history,
    insert,
    play,
    provision,
    rollup,
    script,
)

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def timescale_migrated(timescale_dsn: str) -> str:
    asyncio.run(migrate_dsn(timescale_dsn, "timescale"))
    return timescale_dsn


@pytest.fixture
async def ts(timescale_migrated: str) -> AsyncIterator[asyncpg.Connection]:
    async with connected(timescale_migrated) as con:
        yield con


async def test_a_realtime_continuous_aggregate_with_policies(ts: asyncpg.Connection) -> None:
    cagg = await ts.fetchrow(
        """SELECT materialized_only, compression_enabled FROM timescaledb_information.continuous_aggregates
           WHERE view_name = 'space_history_5m'""")
    assert cagg is not None and cagg["materialized_only"] is False and cagg["compression_enabled"] is True
    jobs = await ts.fetch(
        """SELECT proc_name, hypertable_name FROM timescaledb_information.jobs
           WHERE proc_name IN ('policy_compression', 'policy_refresh_continuous_aggregate')
           ORDER BY 1""")
    assert [tuple(j.values()) for j in jobs] == [
        ("policy_compression", "occupancy_events"),
        ("policy_compression", "space_history_5m"),
        ("policy_refresh_continuous_aggregate", "space_history_5m"),
    ]


async def test_same_rows_on_both_flavors(ts: asyncpg.Connection, db: asyncpg.Connection) -> None:
    live, backlog = script()
    answers = {}
    for flavor, con in (("timescale", ts), ("plain", db)):
        reg = await provision(con, "both")
        await play(con, reg, live, backlog)
        assert await rollup(con, reg) == expected_rollup(live + backlog), flavor
        assert await materialized_to(con) >= END - FIVE, flavor  # the rows come from the rollup, not live
        answers[flavor] = [await history(con, reg, "site_history", q) for q in QUERIES]
        for q, got in zip(QUERIES, answers[flavor], strict=True):
            assert got == await history(con, reg, "site_counts_series", q), (flavor, q)
    assert answers["timescale"] == answers["plain"]


async def materialized_to(con: asyncpg.Connection) -> datetime:
    """Where the real-time part of space_history_5m starts, on either flavor."""
    if await con.fetchval("SELECT to_regclass('space_history_horizon') IS NOT NULL"):
        return await con.fetchval("SELECT materialized_to FROM space_history_horizon")  # type: ignore[no-any-return]
    return await con.fetchval(  # type: ignore[no-any-return]
        """SELECT _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(h.id))
           FROM _timescaledb_catalog.hypertable h
           JOIN timescaledb_information.continuous_aggregates c
             ON c.materialization_hypertable_name = h.table_name
           WHERE c.view_name = 'space_history_5m'""")


async def test_site_history_is_the_same_function(ts: asyncpg.Connection, db: asyncpg.Connection) -> None:
    sql = """SELECT pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prosrc, p.proconfig
             FROM pg_proc p WHERE p.proname = 'site_history'"""
    assert await ts.fetch(sql) == await db.fetch(sql)


async def test_compressed_rollup_answers_the_same(ts: asyncpg.Connection) -> None:
    live, backlog = script(seed=17)
    reg = await provision(ts, "compressed")
    await play(ts, reg, live, backlog[:-10])
    before = [await history(ts, reg, "site_history", q) for q in QUERIES]
    chunks = await ts.fetch(
        "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('space_history_5m') c")
    assert chunks
    assert [await history(ts, reg, "site_history", q) for q in QUERIES] == before
    await play(ts, reg, [], backlog[-10:])  # late events into compressed buckets
    assert await rollup(ts, reg) == expected_rollup(live + backlog)
    for q in QUERIES:
        assert await history(ts, reg, "site_history", q) == await history(ts, reg, "site_counts_series", q)


async def test_retention_keeps_newer_buckets(ts: asyncpg.Connection) -> None:
    """drop_chunks before midnight, then a refresh from the cut: no row after it changes."""
    live, backlog = script(seed=23)
    reg = await provision(ts, "retention")
    await play(ts, reg, live, backlog)
    q = (MIDNIGHT, END, timedelta(minutes=5), timedelta(hours=4))
    before_rows, before = await rollup(ts, reg), await history(ts, reg, "site_history", q)
    assert await ts.fetchval("SELECT drop_event_partitions($1)", MIDNIGHT) >= 1
    await insert(ts, reg, [Ev("gw-a", 10_000, END, "S1", "free")])
    await refresh_history(ts, since=MIDNIGHT)
    after_rows = await rollup(ts, reg)
    assert [r for r in after_rows if r[3] != END] == before_rows
    after = await history(ts, reg, "site_history", q)
    assert after[:-1] == before[:-1] and after[-1][4] == len(SPACES)
