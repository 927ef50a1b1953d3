"""Storage upkeep: event partitions created ahead, and retention.

Plain PostgreSQL: daily partitions for the next week exist before any event
needs them (ingest also creates one on demand for an older day a backlog
reaches); partitions wholly older than ``retention_days`` are dropped.
TimescaleDB: chunks are created on insert; old chunks are dropped by the same
call (``drop_event_partitions`` wraps ``drop_chunks`` there). Any number of
workers may run this: a transaction-scoped advisory lock lets one at a time do it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

_LOCK_KEY = 0x70A2_B0A3
AHEAD_DAYS = 7


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    ran: bool
    created: int = 0
    dropped: int = 0


def retention_cut(now: datetime, retention_days: int | None) -> datetime | None:
    """Events observed before this instant may be dropped (pure)."""
    return None if retention_days is None else now - timedelta(days=retention_days)


async def run_maintenance(con: asyncpg.Connection, *, now: datetime,
                          retention_days: int | None) -> MaintenanceReport:
    async with con.transaction():
        if not await con.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_KEY):
            return MaintenanceReport(ran=False)
        today = now.date()
        created = await con.fetchval("SELECT ensure_event_partitions($1, $2)",
                                     today - timedelta(days=1), today + timedelta(days=AHEAD_DAYS))
        cut = retention_cut(now, retention_days)
        dropped = 0 if cut is None else await con.fetchval("SELECT drop_event_partitions($1)", cut)
    return MaintenanceReport(ran=True, created=int(created or 0), dropped=int(dropped or 0))
