"""Each site's counts every 5 minutes (``site_counts_5m``, migration 012): what the
forecaster learns from and what the API predicts with.

How this works. For every live site, the boundaries from where it was last
counted (``site_counts_horizon``; less ``OVERLAP``, so late events of the last
hour are taken in) up to the last 5-minute boundary before now are computed by
``site_history()`` from the rollup (migration 007), in windows of at most
``WINDOW`` so one statement never runs long; each window replaces the stored
rows it covers and moves the site's horizon, in one transaction. A site never
counted starts ``history_days`` back. Boundaries at which none of the site's
spaces was known are not stored. Rows older than ``history_days`` are deleted
by site (primary key order, no table scan). Sites least recently counted go
first, and the caller's deadline is checked between windows, so a backfill of
many sites spreads over several maintenance runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

STEP = timedelta(minutes=5)
OVERLAP = timedelta(hours=1)
WINDOW = timedelta(days=14)
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # site_history's bucket origin

_SITES_SQL = """
SELECT s.id, s.stale_after_s, h.counted_to
FROM sites s LEFT JOIN site_counts_horizon h ON h.site_id = s.id
WHERE s.retired_at IS NULL
ORDER BY h.counted_to NULLS FIRST, s.id
"""
_DELETE_SQL = "DELETE FROM site_counts_5m WHERE site_id = $1 AND (at < $2 OR (at >= $3 AND at <= $4))"
_INSERT_SQL = """
INSERT INTO site_counts_5m (site_id, at, free, occupied, total)
SELECT $1, h.bucket, h.free, h.occupied, h.total
FROM site_history($1, $2, $3, interval '5 minutes', make_interval(secs => $4)) h
WHERE h.free + h.occupied > 0
"""
_HORIZON_SQL = """
INSERT INTO site_counts_horizon (site_id, counted_to) VALUES ($1, $2)
ON CONFLICT (site_id) DO UPDATE SET counted_to = EXCLUDED.counted_to
"""


@dataclass(frozen=True, slots=True)
class CountsReport:
    sites: int = 0  # sites whose counts moved
    rows: int = 0  # rows written
    behind: int = 0  # sites not yet counted up to now (the deadline came first)


def boundary(t: datetime) -> datetime:
    """The 5-minute boundary at or before ``t`` (pure)."""
    return t - (t - _EPOCH) % STEP


def next_window(counted_to: datetime | None, *, now: datetime,
                history_days: int) -> tuple[datetime, datetime] | None:
    """The boundaries ``[start, end]`` to count next for a site (pure): from where it was
    counted less ``OVERLAP`` (from ``history_days`` back if never), at most ``WINDOW`` long,
    up to the last boundary before ``now``. A site counted up to now gets its last hour again."""
    last = boundary(now)
    oldest = boundary(now - timedelta(days=history_days))
    start = oldest if counted_to is None else max(oldest, boundary(counted_to) - OVERLAP)
    end = min(last, start + WINDOW)
    return None if end <= start else (start, end)


async def refresh_counts(con: asyncpg.Connection, *, now: datetime, history_days: int, deadline: float,
                         clock: Callable[[], float] = time.monotonic) -> CountsReport:
    """Count every live site up to the last boundary before ``now`` (until ``deadline``)."""
    sites = await con.fetch(_SITES_SQL)
    moved = rows = behind = 0
    oldest = boundary(now - timedelta(days=history_days))
    for site in sites:
        counted_to: datetime | None = site["counted_to"]
        wrote = False
        while (window := next_window(counted_to, now=now, history_days=history_days)) is not None:
            if clock() >= deadline:
                behind += 1
                break
            rows += await _count(con, site["id"], site["stale_after_s"], window, oldest)
            counted_to, wrote = window[1], True
            if window[1] >= boundary(now):
                break
        moved += wrote
    return CountsReport(sites=moved, rows=rows, behind=behind)


async def _count(con: asyncpg.Connection, site_id: int, stale_s: int, window: tuple[datetime, datetime],
                 oldest: datetime) -> int:
    """Recompute one window of one site (and drop its rows past retention), in one transaction."""
    start, end = window
    async with con.transaction():
        await con.execute(_DELETE_SQL, site_id, oldest, start, end)
        status = await con.execute(_INSERT_SQL, site_id, start, end, float(stale_s))
        await con.execute(_HORIZON_SQL, site_id, end)
    return int(status.split()[-1])
