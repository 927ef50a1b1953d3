"""One ingest worker's writing side: plan a batch, write it, contain what fails.

``Ingest`` holds what lives between batches (registry, known partition days,
the dead-letter rate cap, totals). ``write`` commits a plan, retrying a lost
database with ``occupancy.backoff`` for up to ``retry_max_s``; every other
failure is contained: the batch is split in halves until the refused
message(s) stand alone, and each is dead-lettered (``store_error``, or ``internal`` for a
failure that is not the database's). Only ``DatabaseUnavailable`` escapes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import asyncpg

from ingest import DatabaseUnavailable, metrics
from ingest.budget import DeadLetterBudget
from ingest.plan import DeadLetter, Plan, Received, describe, plan_batch, refused
from ingest.registry import Registry, load_registry
from ingest.store import (
    WritePolicy,
    Written,
    by_days,
    ensure_partitions,
    write_dead_letters,
    write_plan,
)
from occupancy.backoff import Backoff, Retry
from occupancy.config import Settings
from occupancy.wire import Reason

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
             asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
             asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, ConnectionError, TimeoutError,
             asyncpg.DeadlockDetectedError,
             # a multi-host DSN with every host up and none writable: a failover in progress
             asyncpg.TargetServerAttributeNotMatched)


def is_transient(exc: BaseException) -> bool:
    """A lost or busy database (retry), not something a message holds (contain).

    asyncpg's client-side ``DataError`` (a value it cannot encode) is an
    ``InterfaceError`` and a ``ValueError``: it comes from the data, never retried."""
    client_data = isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError)
    return isinstance(exc, TRANSIENT) and not client_data


# the waits between database attempts: 0.2 s doubling, at most 5 s (equal jitter)
DB_BACKOFF = Backoff(initial_s=0.2, max_s=5.0)


@dataclass
class Ingest:
    """One ingest worker's state between batches: registry, known days, totals."""

    settings: Settings
    pool: asyncpg.Pool
    registry: Registry = field(default_factory=Registry)
    registry_at: float = 0.0
    days: set[date] = field(default_factory=set)
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("messages", "stored", "duplicates", "dead", "capped"), 0))
    budget: DeadLetterBudget = field(init=False)
    policy: WritePolicy = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.settings.ingest
        self.budget = DeadLetterBudget(cfg.dead_letter_rate_per_s, cfg.dead_letter_burst)
        self.policy = WritePolicy(max_payload_bytes=cfg.dead_letter_max_payload_bytes,
                                  admit=self._admit,
                                  boot_reset_after=timedelta(seconds=cfg.boot_reset_after_s))

    def _admit(self, d: DeadLetter) -> bool:
        """The rate cap: per provisioned gateway, one shared bucket for the rest."""
        known = d.tenant is not None and d.gateway is not None \
            and self.registry.gateway(d.tenant, d.gateway) is not None
        return self.budget.admit((d.tenant, d.gateway) if known else None, time.monotonic())

    async def reload_registry(self) -> None:
        async with self.pool.acquire() as con:
            self.registry = await load_registry(con)
        self.registry_at = time.monotonic()
        metrics.REGISTRY_RELOADS.inc()

    def _plan(self, batch: list[Received]) -> Plan:
        cfg = self.settings.ingest
        max_age = None if cfg.retention_days is None else timedelta(days=cfg.retention_days)
        return plan_batch(batch, registry=self.registry, now=datetime.now(UTC),
                          prefix=self.settings.topic_prefix,
                          max_skew=timedelta(seconds=cfg.max_skew_s), max_age=max_age)

    async def plan(self, batch: list[Received]) -> Plan:
        """Plan a batch; reload the registry first if it names something new."""
        plan = self._plan(batch)
        age = time.monotonic() - self.registry_at
        if plan.misses_registry() and age > self.settings.ingest.registry_refresh_s:
            await self.retrying(self.reload_registry)
            plan = self._plan(batch)
        metrics.BATCH_MESSAGES.observe(len(batch))
        return plan

    async def write(self, plan: Plan, batch: list[Received]) -> None:
        """Write and commit a plan, retrying a lost database; count what it did."""
        started = time.perf_counter()
        written = await self.retrying(lambda: self._write(plan, batch))
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.LAST_COMMIT.set(time.time())
        self._count(plan, written)

    async def handle(self, batch: list[Received]) -> Plan:
        """Plan and write one batch without the pipeline (drain, tests)."""
        plan = await self.plan(batch)
        await self.write(plan, batch)
        return plan

    async def _write(self, plan: Plan, batch: list[Received]) -> Written:
        async with self.pool.acquire() as con:
            return await self._write_contained(con, plan, batch)

    async def _write_contained(self, con: asyncpg.Connection, plan: Plan,
                               batch: list[Received]) -> Written:
        """Write a plan; if it is refused, split the batch until the refused messages
        stand alone, and dead-letter those. Only a lost database escapes."""
        try:
            written = Written()
            for part, days in by_days(plan):
                await self._ensure_days(con, days)
                written += await write_plan(con, part, self.policy)
            return written
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(batch) <= 1:
                return await self._dead_alone(con, batch, exc)
            log.warning("batch of %d refused (%s); splitting it", len(batch), describe(exc))
            metrics.SPLIT_BATCHES.inc()
            self.days.clear()  # a partition may have been dropped under us: check again
            half = len(batch) // 2
            first = await self._write_contained(con, self._plan(batch[:half]), batch[:half])
            return first + await self._write_contained(con, self._plan(batch[half:]), batch[half:])

    async def _dead_alone(self, con: asyncpg.Connection, batch: list[Received],
                          exc: Exception) -> Written:
        database = isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError)
        reason = Reason.STORE_ERROR if database else Reason.INTERNAL
        log.warning("message refused alone, dead-lettered (%s): %s", reason, describe(exc))
        prefix = self.settings.topic_prefix
        dead = [refused(m, reason, {"error": describe(exc)}, prefix) for m in batch]
        async with con.transaction():
            return await write_dead_letters(con, dead, self.policy)

    async def _ensure_days(self, con: asyncpg.Connection, days: set[date]) -> None:
        new = days - self.days
        if new:
            await ensure_partitions(con, new)
            self.days |= new

    async def retrying(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action``; while the database is lost, retry with backoff up to ``retry_max_s``."""
        retry = Retry(DB_BACKOFF, give_up_after_s=self.settings.ingest.retry_max_s)
        while True:
            try:
                return await action()
            except TRANSIENT as exc:
                delay = retry.failed(time.monotonic(), random.random())
                if delay is None:
                    raise DatabaseUnavailable(
                        f"database unreachable for {self.settings.ingest.retry_max_s:.0f}s: {exc}"
                    ) from exc
                metrics.DB_RETRIES.inc()
                log.warning("database unavailable (%s: %s); retry %d in %.1fs",
                            type(exc).__name__, exc, retry.attempts, delay)
                await asyncio.sleep(delay)

    def _count(self, plan: Plan, written: Written) -> None:
        metrics.MESSAGES.inc(plan.messages)
        metrics.EVENTS_RECEIVED.inc(len(plan.rows))
        metrics.EVENTS.labels("stored").inc(written.stored)
        metrics.EVENTS.labels("duplicate").inc(written.duplicates)
        for reason in written.dead:
            metrics.DEAD_LETTERS.labels(reason).inc()
        for reason in written.capped:
            metrics.DEAD_LETTERS_CAPPED.labels(reason).inc()
        self.totals["messages"] += plan.messages
        self.totals["stored"] += written.stored
        self.totals["duplicates"] += written.duplicates
        self.totals["dead"] += len(written.dead)
        self.totals["capped"] += len(written.capped)
