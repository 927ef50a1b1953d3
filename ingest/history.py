"""Keeping the per-site occupancy history rollup current (migration 007).

The rollup ``space_history_5m`` holds, per space and 5-minute bucket, the last
observation in the bucket; ``site_history()`` reads it. On plain PostgreSQL it
is a table that ``refresh_site_history(from, to)`` fills from the buckets that
inserts logged (late events included); on TimescaleDB it is a continuous
aggregate that its refresh policy keeps current, and this call refreshes it at
once (PGlite, and tests, run no background jobs). Between refreshes readers
still see every event newer than the rollup's horizon (real-time part), so
calling this now and then (maintenance) is enough.

Call it outside a transaction: TimescaleDB refuses to refresh inside one.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from ingest.migrate import Flavor, schema_flavor

_PLAIN = "SELECT refresh_site_history($1::timestamptz, $2::timestamptz)"
_TIMESCALE = "CALL refresh_continuous_aggregate('space_history_5m', $1::timestamptz, $2::timestamptz)"


async def refresh_history(con: asyncpg.Connection, *, since: datetime | None,
                          until: datetime | None = None) -> int | None:
    """Materialize the history buckets between ``since`` and ``until`` (None: unbounded / now).

    Pass the retention cut as ``since`` (None when nothing is ever dropped): on
    TimescaleDB a refresh over dropped chunks would delete their history rows.
    Returns the rows written on plain PostgreSQL, None on TimescaleDB.
    """
    if await schema_flavor(con) == Flavor.TIMESCALE:
        await con.execute(_TIMESCALE, since, until)
        return None
    return int(await con.fetchval(_PLAIN, since, until))
