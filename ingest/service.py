"""``parkbazaar ingest``: MQTT → PostgreSQL, acknowledging only what committed.

The loop: collect received messages into a batch (by count, bytes and time),
plan it (pure: ``ingest.plan``), write it in one transaction
(``ingest.store``), then acknowledge its messages. A connection failure of the
database is retried with bounded exponential backoff; a data error rewrites the
batch message by message and dead-letters the one that fails. On SIGTERM the
service stops taking messages, finishes what it holds, acknowledges it and
disconnects; what the broker still has waits in the persistent session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import asyncpg
from prometheus_client import start_http_server

from ingest import DatabaseUnavailable, metrics
from ingest.mqtt import IngestClient
from ingest.plan import DeadLetter, Plan, Received, plan_batch
from ingest.registry import Registry, load_registry
from ingest.store import Written, ensure_partitions, event_days, write_dead_letters, write_plan
from occupancy.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
             asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
             asyncpg.AdminShutdownError, ConnectionError)


async def collect(queue: asyncio.Queue[Received], *, max_messages: int, max_bytes: int,
                  max_delay: float, stop: asyncio.Event) -> list[Received]:
    """Wait for a first message (or stop), then gather more for up to ``max_delay``."""
    batch: list[Received] = []
    if queue.empty():
        getter = asyncio.ensure_future(queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not getter.done():
            getter.cancel()
            return batch
        batch.append(getter.result())
    size = sum(len(m.payload) for m in batch)
    deadline = time.monotonic() + max_delay
    while len(batch) < max_messages and size < max_bytes:
        if queue.empty():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        else:
            batch.append(queue.get_nowait())
        size += len(batch[-1].payload)
    return batch


@dataclass
class Ingest:
    """The state of one ingest worker between batches."""

    settings: Settings
    pool: asyncpg.Pool
    registry: Registry = field(default_factory=Registry)
    registry_at: float = 0.0
    days: set[date] = field(default_factory=set)
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("messages", "stored", "duplicates", "dead"), 0))

    async def reload_registry(self) -> None:
        async with self.pool.acquire() as con:
            self.registry = await load_registry(con)
        self.registry_at = time.monotonic()
        metrics.REGISTRY_RELOADS.inc()

    def _plan(self, batch: list[Received]) -> Plan:
        return plan_batch(batch, registry=self.registry, now=datetime.now(UTC),
                          prefix=self.settings.topic_prefix,
                          max_skew=timedelta(seconds=self.settings.ingest.max_skew_s))

    async def handle(self, batch: list[Received]) -> Plan:
        """Plan, write and commit one batch; returns the plan whose acks are due."""
        started = time.perf_counter()
        plan = self._plan(batch)
        age = time.monotonic() - self.registry_at
        if plan.misses_registry() and age > self.settings.ingest.registry_refresh_s:
            await self.retrying(self.reload_registry)
            plan = self._plan(batch)
        written = await self.retrying(lambda: self._write(plan, batch))
        self._count(plan, written)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return plan

    async def _write(self, plan: Plan, batch: list[Received]) -> Written:
        async with self.pool.acquire() as con:
            await self._ensure_days(con, plan)
            try:
                return await write_plan(con, plan)
            except asyncpg.PostgresError as exc:
                if isinstance(exc, TRANSIENT):
                    raise
                log.warning("batch failed (%s); writing it message by message", exc)
                metrics.SPLIT_BATCHES.inc()
                return await self._write_one_by_one(con, batch)

    async def _write_one_by_one(self, con: asyncpg.Connection, batch: list[Received]) -> Written:
        total = Written(0, 0, 0, 0)
        for msg in batch:
            single = self._plan([msg])
            try:
                w = await write_plan(con, single)
            except asyncpg.PostgresError as exc:
                if isinstance(exc, TRANSIENT):
                    raise
                bad = DeadLetter(msg.topic, msg.payload, "store_error", {"error": str(exc)},
                                 None, None)
                await write_dead_letters(con, [bad])
                w = Written(0, 0, 0, 1)
            total = Written(total.stored + w.stored, total.duplicates + w.duplicates,
                            total.states_changed + w.states_changed, total.dead + w.dead)
        return total

    async def _ensure_days(self, con: asyncpg.Connection, plan: Plan) -> None:
        new = event_days(plan.rows) - self.days
        if new:
            await ensure_partitions(con, new)
            self.days |= new

    async def retrying(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action``; on a lost database retry with bounded backoff, then give up."""
        limit = self.settings.ingest.retry_max
        for attempt in range(limit + 1):
            try:
                return await action()
            except TRANSIENT as exc:
                if attempt == limit:
                    raise DatabaseUnavailable(f"database unreachable after {limit} retries: "
                                              f"{exc}") from exc
                delay = min(0.2 * 2**attempt, 10.0)
                metrics.DB_RETRIES.inc()
                log.warning("database write failed (%s); retry %d/%d in %.1fs", exc,
                            attempt + 1, limit, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _count(self, plan: Plan, written: Written) -> None:
        metrics.MESSAGES.inc(plan.messages)
        metrics.EVENTS.labels("stored").inc(written.stored)
        metrics.EVENTS.labels("duplicate").inc(written.duplicates)
        for d in plan.dead:
            metrics.DEAD_LETTERS.labels(d.reason).inc()
        self.totals["messages"] += plan.messages
        self.totals["stored"] += written.stored
        self.totals["duplicates"] += written.duplicates
        self.totals["dead"] += written.dead


async def _open_pool(settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(settings.dsn, min_size=1, max_size=2)
    if pool is None:  # pragma: no cover - asyncpg types it Optional
        raise DatabaseUnavailable("no pool")
    return pool


async def run_ingest(settings: Settings, stop: asyncio.Event,
                     ready: asyncio.Event | None = None) -> dict[str, int]:
    """Run until ``stop`` is set; drain what was received; return the totals."""
    if settings.ingest.metrics_port:
        start_http_server(settings.ingest.metrics_port, addr="127.0.0.1")
    pool = await _open_pool(settings)
    worker = Ingest(settings, pool)
    await worker.reload_registry()
    queue: asyncio.Queue[Received] = asyncio.Queue()
    client = IngestClient(settings.mqtt, settings.ingest, settings.topic_prefix,
                          asyncio.get_running_loop(), queue.put_nowait,
                          on_reconnect=metrics.RECONNECTS.inc)
    await asyncio.to_thread(client.connect)
    log.info("ingest %s running", settings.ingest.client_id)
    if ready is not None:
        ready.set()
    try:
        await _loop(worker, client, queue, stop)
    finally:
        client.close()
        await pool.close()
    log.info("ingest stopped: %s", worker.totals)
    return worker.totals


async def _loop(worker: Ingest, client: IngestClient, queue: asyncio.Queue[Received],
                stop: asyncio.Event) -> None:
    cfg = worker.settings.ingest
    delay = cfg.batch_max_delay_ms / 1000
    limits = {"max_messages": cfg.batch_max_messages, "max_bytes": cfg.batch_max_bytes}
    while not stop.is_set():
        batch = await collect(queue, stop=stop, max_delay=delay, **limits)
        metrics.QUEUE_DEPTH.set(queue.qsize())
        if batch:
            plan = await worker.handle(batch)
            client.ack(plan.acks)
    client.stop_receiving()
    while not queue.empty():  # drain: finish what was already received
        batch = await collect(queue, stop=asyncio.Event(), max_delay=0, **limits)
        plan = await worker.handle(batch)
        client.ack(plan.acks)
