"""The writes of one batch, in one transaction (all the SQL ingest runs).

Events go through COPY into a temporary staging table, then ``INSERT … ON
CONFLICT DO NOTHING`` into ``occupancy_events`` (a resent event is ignored);
``space_state`` takes, per space, the newest staged event and only where it is
newer than the one it holds, so redelivery, reordering and parallel workers
cannot move a state backwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from ingest.plan import DeadLetter, EventRow, Plan, StatusUpdate, dead_letter_json
from occupancy.wire import format_time

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
WITH up AS (
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
RETURNING space_id, state, observed_at
)
SELECT up.space_id, sp.site_id, up.state, up.observed_at
FROM up JOIN spaces sp ON sp.id = up.space_id
"""

NOTIFY_CHANNEL = "parkbazaar_changes"
NOTIFY_MAX_BYTES = 7900  # PostgreSQL refuses a payload of 8000 bytes or more

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


def notify_payloads(changes: Sequence[asyncpg.Record | tuple[Any, ...]]) -> list[str]:
    """The changed states of a batch as ``NOTIFY`` payloads, each under the size limit (pure).

    ``{"v":1,"changes":[{"space_id","site_id","state","observed_at"}, …]}``
    """
    payloads: list[str] = []
    items: list[str] = []
    size = 0
    for space_id, site_id, state, observed_at in changes:
        item = json.dumps({"space_id": space_id, "site_id": site_id, "state": state,
                           "observed_at": format_time(observed_at)}, separators=(",", ":"))
        if items and size + len(item) + 40 > NOTIFY_MAX_BYTES:
            payloads.append(_envelope(items))
            items, size = [], 0
        items.append(item)
        size += len(item) + 1
    if items:
        payloads.append(_envelope(items))
    return payloads


def _envelope(items: list[str]) -> str:
    return '{"v":1,"changes":[' + ",".join(items) + "]}"


async def _write_events(con: asyncpg.Connection, rows: list[EventRow]) -> tuple[int, int]:
    await con.execute(_STAGE)
    await con.copy_records_to_table("ingest_stage", records=rows, columns=EVENT_COLUMNS)
    status = await con.execute(_INSERT_EVENTS)
    stored = int(status.split()[-1])
    changes = await con.fetch(_UPSERT_STATE)
    for payload in notify_payloads(changes):  # delivered at commit, coalesced per batch
        await con.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)
    return stored, len(changes)


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
