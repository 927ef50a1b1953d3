"""Storage upkeep: event partitions created ahead, retention, and the refresh
of the per-site history rollup (``ingest.history``).

Plain PostgreSQL: daily partitions for the next week exist before any event
needs them (ingest also creates one on demand for an older day a backlog
reaches); partitions wholly older than ``retention_days`` are dropped.
TimescaleDB: chunks are created on insert; old chunks are dropped by the same
call (``drop_event_partitions`` wraps ``drop_chunks`` there). Any number of
workers may run this: a transaction-scoped advisory lock lets one at a time do it.
Dead letters older than ``dead_letter_retention_days`` are deleted in the same
run (by ``received_at``, indexed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from ingest.history import refresh_history

_LOCK_KEY = 0x70A2_B0A3
AHEAD_DAYS = 7


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    ran: bool
    created: int = 0
    dropped: int = 0
    refreshed: int | None = None
    dead_letters_dropped: int = 0


def retention_cut(now: datetime, retention_days: int | None) -> datetime | None:
    """Events observed before this instant may be dropped (pure)."""
    return None if retention_days is None else now - timedelta(days=retention_days)


async def run_maintenance(con: asyncpg.Connection, *, now: datetime, retention_days: int | None,
                          dead_letter_retention_days: int | None = None) -> MaintenanceReport:
    async with con.transaction():
        if not await con.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_KEY):
            return MaintenanceReport(ran=False)
        today = now.date()
        created = await con.fetchval("SELECT ensure_event_partitions($1, $2)",
                                     today - timedelta(days=1), today + timedelta(days=AHEAD_DAYS))
        cut = retention_cut(now, retention_days)
        dropped = 0 if cut is None else await con.fetchval("SELECT drop_event_partitions($1)", cut)
        dead_cut = retention_cut(now, dead_letter_retention_days)
        dead = 0 if dead_cut is None else int(
            (await con.execute("DELETE FROM dead_letters WHERE received_at < $1", dead_cut)).split()[-1])
    # outside the transaction (TimescaleDB refuses to refresh inside one); from
    # the retention cut, so a refresh never deletes the history of dropped chunks
    refreshed = await refresh_history(con, since=cut)
    return MaintenanceReport(ran=True, created=int(created or 0), dropped=int(dropped or 0),
                             refreshed=refreshed, dead_letters_dropped=dead)
