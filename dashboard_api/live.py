"""Live changes for the SSE streams: one feed per API process, fanned out in-process.

How this works: ingest commits a batch and sends ``NOTIFY parkbazaar_changes``
with ``{"v":1,"changes":[{"space_id","site_id","state","observed_at"}, …]}``.
The feed LISTENs on one dedicated connection; a notification only *wakes* it
(and says which sites changed). The truth is read from ``space_state``: every
write of a row stamps it with its transaction id (``change_xid``, migration
006). The feed remembers the ``xmin`` of the snapshot of its previous read —
every transaction older than it had finished and was seen — and reads the rows
of its subscribed sites written by transactions at or after it. A transaction
that commits late is therefore never skipped, and a client that reconnects
with ``Last-Event-ID: <xmin>`` is sent every row written since, with no gap
(at worst a space it already has, again: states are idempotent).

With no notification the feed still reads every ``POLL_S`` seconds, so it
works (a little later) against an ingest that does not notify, and refreshes
counts that change by the clock alone (an observation going stale).

Each read yields one SSE message per site, formatted once and put on the
queue of every subscriber of that site. A subscriber whose queue is full is
dropped (its stream ends); its browser reconnects with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter

from dashboard_api import queries
from dashboard_api.queries import _EFF
from occupancy.backoff import Backoff, Retry

log = logging.getLogger(__name__)

CHANNEL = "parkbazaar_changes"
POLL_S = 2.0
COUNTS_EVERY_S = 30.0
QUEUE_MAX = 256
RECONNECT_MAX_S = 10.0
FEED_BACKOFF = Backoff(initial_s=0.2, max_s=RECONNECT_MAX_S)
RECONNECTS = Counter("parkbazaar_api_feed_reconnects", "Times the live change feed lost its LISTEN "
                     "connection and retried (after a backoff of at most RECONNECT_MAX_S)")
_SPACE_KEYS = ("space", "zone", "state", "observed_at", "source", "stale")

# $1 now, $2 site ids, $3 xmin (text) to read from.
_CHANGES_SQL = f"""
WITH site AS (
    SELECT si.*, t.slug AS tenant, t.timezone FROM sites si JOIN tenants t ON t.id = si.tenant_id
    WHERE si.id = ANY($2::int[])
), {_EFF},
snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin)
SELECT snap.xmin, e.site_id, e.slug AS space, z.slug AS zone, e.state, e.observed_at, e.source, e.stale
FROM snap
LEFT JOIN (eff e JOIN space_state st ON st.space_id = e.space_id AND st.change_xid >= $3::text::xid8)
  ON true
LEFT JOIN zones z ON z.id = e.zone_id
ORDER BY e.site_id, st.change_id
"""

_SITE_KEYS_SQL = """SELECT si.id, t.slug AS tenant, si.slug
FROM sites si JOIN tenants t ON t.id = si.tenant_id
WHERE t.slug = $1 AND si.slug = $2 AND si.retired_at IS NULL"""

_XMIN_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    """One Server-Sent Events message (pure)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, default=_default, ensure_ascii=False, separators=(",", ":"))
    return f"{head}event: {event}\ndata: {body}\n\n"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON: {type(value).__name__}")


def parse_notification(payload: str) -> set[int]:
    """Site ids named by a ``parkbazaar_changes`` payload; empty when unreadable (pure)."""
    try:
        doc = json.loads(payload)
        return {int(c["site_id"]) for c in doc.get("changes", []) if "site_id" in c}
    except (ValueError, TypeError, KeyError, AttributeError):
        return set()


@dataclass(eq=False)
class Subscriber:
    """One SSE client: its site and its queue of formatted messages (None: stream ends)."""

    site_id: int
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))


@dataclass(frozen=True, slots=True)
class SiteKey:
    id: int
    tenant: str
    slug: str


class ChangeFeed:
    """LISTEN for changes; read them from ``space_state``; fan out per site."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, *, poll_s: float = POLL_S) -> None:
        self._dsn, self._pool, self._poll_s = dsn, pool, poll_s
        self._subs: dict[int, set[Subscriber]] = defaultdict(set)
        self._keys: dict[int, SiteKey] = {}
        self._wake = asyncio.Event()
        self._xmin: str | None = None
        self._last_counts: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        # callables(site_ids) run on every notification of committed changes (empty set: any
        # site may have changed), whether or not a client streams; also when (re)connected
        self.on_change: list[Any] = []
        self.reads = 0

    async def start(self) -> None:
        """Take the first cursor and start listening before any client can subscribe or read
        a cached response, then go on listening in a task."""
        async with self._pool.acquire() as con:
            self._xmin = await current_xmin(con)
        listening = await self._connect()
        self._task = asyncio.create_task(self._run(listening), name="change-feed")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subs in self._subs.values():
            for s in subs:
                _offer(s, None)

    async def site_key(self, con: asyncpg.Connection, tenant: str, site: str) -> SiteKey | None:
        row = await con.fetchrow(_SITE_KEYS_SQL, tenant, site)
        return SiteKey(row["id"], row["tenant"], row["slug"]) if row else None

    def subscribe(self, key: SiteKey) -> Subscriber:
        """Register before reading the snapshot, so nothing committed after it is missed."""
        sub = Subscriber(key.id)
        self._keys[key.id] = key
        self._subs[key.id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs[sub.site_id].discard(sub)
        if not self._subs[sub.site_id]:
            del self._subs[sub.site_id]

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    async def _run(self, con: asyncpg.Connection | None) -> None:
        retry = Retry(FEED_BACKOFF)  # the feed never gives up: the API serves without it
        while True:
            try:
                await self._listen(con or await self._connect())
                retry.succeeded()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    asyncpg.TargetServerAttributeNotMatched) as exc:  # no primary yet (failover)
                delay = retry.failed(time.monotonic(), random.random())
                assert delay is not None  # no bound
                log.warning("change feed lost its connection (%s); retrying in %.1fs", exc, delay)
                RECONNECTS.inc()
                await asyncio.sleep(delay)
            con = None

    async def _connect(self) -> asyncpg.Connection:
        con = await asyncpg.connect(self._dsn)
        try:
            await con.add_listener(CHANNEL, self._notified)
        except BaseException:
            await con.close()
            raise
        log.info("change feed listening on %s", CHANNEL)
        self._changed(set())  # whatever committed while nobody listened
        return con

    async def _listen(self, con: asyncpg.Connection) -> None:
        try:
            while not con.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)
                self._wake.clear()
                await self.read_once(con)
        finally:
            await con.close()

    def _notified(self, _con: object, _pid: int, _channel: str, payload: str) -> None:
        sites = parse_notification(payload)
        self._changed(sites)
        if not sites or sites & set(self._subs):
            self._wake.set()

    def _changed(self, sites: set[int]) -> None:
        for fn in self.on_change:
            fn(sites)

    async def read_once(self, con: asyncpg.Connection) -> None:
        """Read the rows changed since the previous read and deliver them."""
        if self._xmin is None or not self._subs:  # nobody to tell: move the cursor to now
            xmin = await con.fetchval(_XMIN_SQL)
            if self._xmin is None or not self._subs:  # (read before any snapshot of a new subscriber)
                self._xmin = xmin
                return
        sites = list(self._subs)
        rows = await con.fetch(_CHANGES_SQL, datetime.now(UTC), sites, self._xmin)
        self.reads += 1
        xmin = rows[0]["xmin"]
        changed = _group(r for r in rows if r["site_id"] is not None)
        due = self._counts_due(sites, changed)
        for site_id in due:
            await self._deliver(site_id, changed.get(site_id, []), xmin)
        self._xmin = xmin

    def _counts_due(self, sites: Sequence[int], changed: dict[int, list[dict[str, Any]]]) -> list[int]:
        now = asyncio.get_running_loop().time()
        due = [s for s in sites if s in changed or now - self._last_counts.get(s, 0) >= COUNTS_EVERY_S]
        for s in due:
            self._last_counts[s] = now
        return due

    async def _deliver(self, site_id: int, spaces: list[dict[str, Any]], xmin: str) -> None:
        key = self._keys.get(site_id)
        subs = self._subs.get(site_id)
        if key is None or not subs:
            return
        async with self._pool.acquire() as con:
            detail = await queries.site(con, now=datetime.now(UTC), tenant=key.tenant, site=key.slug)
        if detail is None:
            return
        text = "".join(sse("space", s, xmin) for s in spaces) + sse("counts", detail.model_dump(), xmin)
        for sub in list(subs):
            if not _offer(sub, text):
                log.info("SSE client of site %s too slow: dropped (it resumes with Last-Event-ID)", key.slug)
                self.unsubscribe(sub)


def _offer(sub: Subscriber, text: str | None) -> bool:
    try:
        sub.queue.put_nowait(text)
        return True
    except asyncio.QueueFull:
        with contextlib.suppress(asyncio.QueueEmpty):
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)
        return False


def _group(rows: Iterable[asyncpg.Record]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r["site_id"]].append({k: r[k] for k in _SPACE_KEYS})
    return dict(out)


async def changes_since(
    con: asyncpg.Connection, key: SiteKey, xmin: str
) -> tuple[str, list[dict[str, Any]]]:
    """For a resuming client: (current xmin, every space of the site written since ``xmin``)."""
    rows = await con.fetch(_CHANGES_SQL, datetime.now(UTC), [key.id], xmin)
    return rows[0]["xmin"], list(_group(r for r in rows if r["site_id"] is not None).get(key.id, []))


async def current_xmin(con: asyncpg.Connection) -> str:
    value: str = await con.fetchval(_XMIN_SQL)
    return value
