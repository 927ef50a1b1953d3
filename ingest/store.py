"""The writes of one batch, in one transaction (all the SQL ingest runs).

Events go through COPY into a temporary staging table, then ``INSERT … ON
CONFLICT DO NOTHING`` into ``occupancy_events`` (a resent event is ignored);
``space_state`` takes, per space, the newest staged event and only where it is
newer than the one it holds, so redelivery, reordering and parallel workers
cannot move a state backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import asyncpg

from ingest.plan import DeadLetter, EventRow, Plan, StatusUpdate, dead_letter_json

EVENT_COLUMNS = ("observed_at", "gateway_id", "seq", "space_id", "state", "source", "kind",
                 "confidence", "device")

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    observed_at timestamptz, gateway_id int, seq bigint, space_id int, state text,
    source text, kind text, confidence real, device text
) ON COMMIT DELETE ROWS
"""

_INSERT_EVENTS = """
INSERT INTO occupancy_events (observed_at, gateway_id, seq, space_id, state, source, kind,
                              confidence, device)
SELECT * FROM ingest_stage
ON CONFLICT DO NOTHING
"""

_UPSERT_STATE = """
INSERT INTO space_state AS s (space_id, state, observed_at, source, confidence, gateway_id,
                              seq, changed_at)
SELECT DISTINCT ON (space_id) space_id, state, observed_at, source, confidence, gateway_id,
       seq, observed_at
FROM ingest_stage
ORDER BY space_id, observed_at DESC, seq DESC
ON CONFLICT (space_id) DO UPDATE SET
    state = EXCLUDED.state, observed_at = EXCLUDED.observed_at, source = EXCLUDED.source,
    confidence = EXCLUDED.confidence, gateway_id = EXCLUDED.gateway_id, seq = EXCLUDED.seq,
    changed_at = CASE WHEN s.state = EXCLUDED.state THEN s.changed_at
                      ELSE EXCLUDED.observed_at END,
    updated_at = now()
WHERE (s.observed_at, s.seq) < (EXCLUDED.observed_at, EXCLUDED.seq)
RETURNING space_id
"""

# A birth or death of an older session never overrides a newer one; for the
# same session, a death wins over a (redelivered) birth.
_STATUS = """
UPDATE gateways SET
    online = CASE WHEN $3 > boot THEN $2 ELSE online AND $2 END,
    boot = $3, status_at = $4
WHERE id = $1 AND $3 >= boot
"""

_DEAD = """
INSERT INTO dead_letters (topic, payload, reason, detail, tenant, gateway)
VALUES ($1, $2, $3, $4::jsonb, $5, $6)
"""


@dataclass(frozen=True, slots=True)
class Written:
    """What a committed batch did."""

    stored: int
    duplicates: int
    states_changed: int
    dead: int


def event_days(rows: Iterable[EventRow]) -> set[date]:
    """The UTC days an event batch touches (its partitions must exist)."""
    return {r[0].date() for r in rows}  # observed_at is UTC-aware from the decoder


async def ensure_partitions(con: asyncpg.Connection, days: set[date]) -> None:
    if days:
        await con.execute("SELECT ensure_event_partitions($1, $2)", min(days), max(days))


async def _write_events(con: asyncpg.Connection, rows: list[EventRow]) -> tuple[int, int]:
    await con.execute(_STAGE)
    await con.copy_records_to_table("ingest_stage", records=rows, columns=EVENT_COLUMNS)
    status = await con.execute(_INSERT_EVENTS)
    stored = int(status.split()[-1])
    changed = len(await con.fetch(_UPSERT_STATE))
    return stored, changed


async def _write_statuses(con: asyncpg.Connection, statuses: list[StatusUpdate]) -> None:
    for s in statuses:
        await con.execute(_STATUS, s.gateway_id, s.online, s.boot, s.at)


async def write_dead_letters(con: asyncpg.Connection, dead: list[DeadLetter]) -> None:
    if dead:
        await con.executemany(_DEAD, [
            (d.topic, d.payload, d.reason, dead_letter_json(d), d.tenant, d.gateway) for d in dead
        ])


async def write_plan(con: asyncpg.Connection, plan: Plan) -> Written:
    """Write everything a plan holds in one transaction; commit before returning."""
    async with con.transaction():
        stored, changed = await _write_events(con, plan.rows) if plan.rows else (0, 0)
        await _write_statuses(con, plan.statuses)
        await write_dead_letters(con, plan.dead)
    return Written(stored, len(plan.rows) - stored, changed, len(plan.dead))
