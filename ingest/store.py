"""The writes of one batch, in one transaction (all the SQL ingest runs).

Events go through COPY into a temporary staging table, then ``INSERT … ON
CONFLICT DO NOTHING`` into ``occupancy_events`` (a resent event is ignored);
``space_state`` takes, per space, the newest staged event and only where it is
newer than the one it holds, so redelivery, reordering and parallel workers
cannot move a state backwards. "Newer" compares the observation time clamped to
the time it was written (``least(observed_at, now())``, then ``seq``): an event
from a gateway clock running ahead (up to ``max_skew``) counts as observed when
it arrived, so it cannot hold the state against the real observations after it.

Dead letters keep the first ``max_payload_bytes`` of the payload with its full
length and SHA-256, and only as many as ``admit`` lets through (a per-gateway
rate cap); gateway statuses follow ``ingest.status``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import asyncpg

from ingest.plan import DeadLetter, EventRow, Plan, StatusUpdate, clean_text, dead_letter_json
from ingest.status import GatewayStatus, Verdict, decide
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
ORDER BY space_id, least(observed_at, now()) DESC, seq DESC
ON CONFLICT (space_id) DO UPDATE SET
    state = EXCLUDED.state, observed_at = EXCLUDED.observed_at, source = EXCLUDED.source,
    confidence = EXCLUDED.confidence, gateway_id = EXCLUDED.gateway_id, seq = EXCLUDED.seq,
    changed_at = CASE WHEN s.state = EXCLUDED.state THEN s.changed_at
                      ELSE EXCLUDED.observed_at END,
    updated_at = now()
WHERE (least(s.observed_at, s.updated_at), s.seq) < (least(EXCLUDED.observed_at, now()), EXCLUDED.seq)
RETURNING space_id, state, observed_at
)
SELECT up.space_id, sp.site_id, up.state, up.observed_at
FROM up JOIN spaces sp ON sp.id = up.space_id
"""

NOTIFY_CHANNEL = "parkbazaar_changes"
NOTIFY_MAX_BYTES = 7900  # PostgreSQL refuses a payload of 8000 bytes or more

# The row is locked, so two writers decide one after the other (ingest.status).
_STATUS_GET = "SELECT online, boot, status_at FROM gateways WHERE id = $1 FOR UPDATE"
_STATUS_SET = "UPDATE gateways SET online = $2, boot = $3, status_at = $4 WHERE id = $1"

_DEAD = """
INSERT INTO dead_letters (topic, payload, reason, detail, tenant, gateway, payload_bytes,
                          payload_sha256)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
"""


@dataclass(frozen=True, slots=True)
class WritePolicy:
    """How dead letters and statuses are written (from the settings)."""

    max_payload_bytes: int = 4096
    admit: Callable[[DeadLetter], bool] = lambda _d: True
    boot_reset_after: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Written:
    """What a committed batch did; ``dead``/``capped`` are the reasons of the dead
    letters stored / not stored over the rate cap."""

    stored: int = 0
    duplicates: int = 0
    states_changed: int = 0
    dead: tuple[str, ...] = field(default=())
    capped: tuple[str, ...] = field(default=())

    def __add__(self, other: Written) -> Written:
        return Written(self.stored + other.stored, self.duplicates + other.duplicates,
                       self.states_changed + other.states_changed, self.dead + other.dead,
                       self.capped + other.capped)


def event_days(rows: Iterable[EventRow]) -> set[date]:
    """The UTC days an event batch touches (its partitions must exist)."""
    return {r[0].date() for r in rows}  # observed_at is UTC-aware from the decoder


# An insert locks every partition (or chunk) it touches with its indexes, about
# five locks a day: one message with an event on each of 400 days held 2,200 of
# the server's ~6,400 shared lock slots in one transaction. A batch is written
# in transactions of at most this many days each.
MAX_DAYS_PER_TRANSACTION = 16


def by_days(plan: Plan, max_days: int = MAX_DAYS_PER_TRANSACTION) -> list[tuple[Plan, set[date]]]:
    """The plan as plans (with their days) whose rows span at most ``max_days`` days (pure).

    Almost always the plan itself. Otherwise the last part also holds the statuses
    and dead letters, so they commit only once every row has: a part that fails
    after others committed is written again, and only rows are idempotent."""
    days = event_days(plan.rows)
    if len(days) <= max_days:
        return [(plan, days)]
    ordered = sorted(days)
    part_of = {d: i // max_days for i, d in enumerate(ordered)}
    parts = [(Plan(), set(ordered[i:i + max_days])) for i in range(0, len(ordered), max_days)]
    for row in plan.rows:
        parts[part_of[row[0].date()]][0].rows.append(row)
    last = parts[-1][0]
    last.statuses, last.dead = plan.statuses, plan.dead
    return parts


async def ensure_partitions(con: asyncpg.Connection, days: set[date]) -> None:
    """Create the partitions of exactly these days, one transaction each.

    Never the range between them (a 1970 event beside today's would make 20,000),
    and one at a time, so the locks a transaction holds stay few. The planner
    only lets through days inside the retention window."""
    for day in sorted(days):
        await con.execute("SELECT ensure_event_partitions($1, $1)", day)


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


async def _write_statuses(con: asyncpg.Connection, statuses: list[StatusUpdate],
                          policy: WritePolicy) -> list[DeadLetter]:
    """Apply the statuses (in gateway order: rows are locked); returns the refused ones."""
    refused = []
    for s in sorted(statuses, key=lambda s: s.gateway_id):  # stable: per gateway in order
        row = await con.fetchrow(_STATUS_GET, s.gateway_id)
        if row is None:
            continue  # the gateway was deleted since the registry was read
        stored = GatewayStatus(row["online"], row["boot"], row["status_at"])
        verdict, new = decide(stored, online=s.online, boot=s.boot, now=s.at,
                              reset_after=policy.boot_reset_after)
        if verdict is Verdict.APPLY:
            await con.execute(_STATUS_SET, s.gateway_id, new.online, new.boot, new.at)
        elif verdict is Verdict.JUMP:
            refused.append(s.refused)
    return refused


# A topic of the contract is at most ~130 characters past its prefix; MQTT allows 65,535
# bytes, which unbounded would make a bad topic's dead letter 16 times the payload cap.
MAX_TOPIC_CHARS = 1024


def dead_letter_row(d: DeadLetter, max_payload_bytes: int) -> tuple[Any, ...]:
    """The row of a dead letter: the topic cut to ``MAX_TOPIC_CHARS``, the payload cut to
    ``max_payload_bytes``, the payload's full length and its hash."""
    return (clean_text(d.topic[:MAX_TOPIC_CHARS]), d.payload[:max_payload_bytes], d.reason,
            dead_letter_json(d), d.tenant, d.gateway, len(d.payload), hashlib.sha256(d.payload).digest())


async def write_dead_letters(con: asyncpg.Connection, dead: list[DeadLetter],
                             policy: WritePolicy) -> Written:
    """Store the dead letters the rate cap admits; count the others."""
    kept: list[DeadLetter] = []
    capped: list[str] = []
    for d in dead:
        if policy.admit(d):
            kept.append(d)
        else:
            capped.append(d.reason)
    if kept:
        await con.executemany(_DEAD, [dead_letter_row(d, policy.max_payload_bytes) for d in kept])
    return Written(dead=tuple(d.reason for d in kept), capped=tuple(capped))


async def write_plan(con: asyncpg.Connection, plan: Plan, policy: WritePolicy) -> Written:
    """Write everything a plan holds in one transaction; commit before returning."""
    async with con.transaction():
        stored, changed = await _write_events(con, plan.rows) if plan.rows else (0, 0)
        refused = await _write_statuses(con, plan.statuses, policy)
        dead = await write_dead_letters(con, plan.dead + refused, policy)
    return Written(stored, len(plan.rows) - stored, changed) + dead
