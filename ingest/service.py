"""``parkbazaar ingest``: MQTT → PostgreSQL, acknowledging only what committed.

How this works: three stages joined by bounded queues, on one event loop.

1. paho's network thread hands each message over (``ingest.mqtt``); at most
   ``queue_max_messages`` are received and not yet acknowledged, so a slow
   database makes ingest stop reading and the broker keep the rest;
2. the *planner* collects a batch (by count, bytes and time) and plans it
   (pure: ``ingest.plan``), then waits for room in a queue of
   ``pipeline_depth`` planned batches — so the next batch is decoded while the
   previous one commits;
3. ``writers`` writers (two by default, each on its own connection, so one
   commits while the other copies) write each plan in one transaction
   (``ingest.store``), commit, then acknowledge its messages. Batches may
   commit out of order: harmless, since writes are idempotent and a space's
   state only moves to a later observation; upserts lock state rows in
   ``space_id`` order, so two writers cannot deadlock.

A lost database, like a lost broker (``ingest.mqtt``), is retried with
``occupancy.backoff`` (counted, logged) for up to ``retry_max_s``, then the
worker exits non-zero with nothing acknowledged that did not commit. Nothing
a message holds can end the process: planning is contained per message
(``ingest.plan``), and when the database refuses a batch (partition creation
included) or the write fails in any other way that is not a lost connection,
the batch is split in halves and rewritten until the message(s) it refuses
stand alone; each is dead-lettered (``store_error``, or ``internal`` for a
failure that is not the database's) and acknowledged, so a broker never
redelivers a message that crashed ingest (``ingest.worker``). On
SIGTERM the service stops taking messages, writes and acknowledges what it
took, and disconnects; the broker keeps the rest in the persistent session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import start_http_server

from ingest import BrokerUnavailable, DatabaseUnavailable, metrics
from ingest.forecasting import run_forecasts
from ingest.maintenance import run_maintenance
from ingest.mqtt import IngestClient
from ingest.plan import Plan, Received
from ingest.worker import TRANSIENT, Ingest
from occupancy.config import Settings

__all__ = ["Ingest", "collect", "run_ingest"]

log = logging.getLogger(__name__)


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


async def _open_pool(settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(settings.dsn, min_size=1, max_size=settings.ingest.writers + 2)
    if pool is None:  # pragma: no cover - asyncpg types it Optional
        raise DatabaseUnavailable("no pool")
    return pool


async def run_ingest(settings: Settings, stop: asyncio.Event,
                     ready: asyncio.Event | None = None) -> dict[str, int]:
    """Run until ``stop`` is set; drain what was received; return the totals.

    ``ready`` is set once the broker has acknowledged the subscriptions (what is
    published from then on reaches this session), while the pipeline already
    runs: a resumed session's backlog may arrive before the SUBACK."""
    if settings.ingest.metrics_port:
        start_http_server(settings.ingest.metrics_port, addr=settings.ingest.metrics_host)
    pool = await _open_pool(settings)
    worker = Ingest(settings, pool)
    await worker.reload_registry()
    queue: asyncio.Queue[Received] = asyncio.Queue()
    client = IngestClient(settings.mqtt, settings.ingest, settings.topic_prefix,
                          asyncio.get_running_loop(), queue.put_nowait,
                          on_reconnect=metrics.RECONNECTS.inc, on_retry=metrics.MQTT_RETRIES.inc)
    await asyncio.to_thread(client.connect)
    log.info("ingest %s running", settings.ingest.client_id)
    upkeep = asyncio.create_task(_maintain(worker, stop), name="ingest-maintenance")
    pipeline = asyncio.create_task(_pipeline(worker, client, queue, stop), name="ingest-pipeline")
    try:
        await _watch(client, pipeline, ready)
        await pipeline
    finally:
        if not pipeline.done():  # cancelled from outside
            pipeline.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pipeline
        upkeep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upkeep
        client.close()
        await pool.close()
    log.info("ingest stopped: %s", worker.totals)
    return worker.totals


Planned = tuple[Plan, list[Received]]


async def _watch(client: IngestClient, pipeline: asyncio.Task[None],
                 ready: asyncio.Event | None) -> None:
    """Wait for the pipeline to end. Meanwhile set ``ready`` at the SUBACK, and raise
    ``BrokerUnavailable`` if the MQTT supervisor gives up on the broker first."""
    lost = asyncio.create_task(client.gave_up.wait())
    subscribed = asyncio.create_task(client.subscribed.wait())
    watched: set[asyncio.Future[Any]] = {pipeline, lost}
    if ready is not None:
        watched.add(subscribed)
    try:
        while not (pipeline.done() or lost.done()):
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if ready is not None and subscribed.done():
                ready.set()
                watched.discard(subscribed)
    finally:
        lost.cancel()
        subscribed.cancel()
    if not pipeline.done():
        raise BrokerUnavailable(client.give_up_reason)


async def _pipeline(worker: Ingest, client: IngestClient, queue: asyncio.Queue[Received],
                    stop: asyncio.Event) -> None:
    cfg = worker.settings.ingest
    planned: asyncio.Queue[Planned | None] = asyncio.Queue(cfg.pipeline_depth)
    writers = [asyncio.create_task(_writer(worker, client, planned), name=f"ingest-writer-{i}")
               for i in range(cfg.writers)]
    planner = asyncio.create_task(_planner(worker, client, queue, planned, stop, cfg.writers),
                                  name="ingest-planner")
    tasks = {planner, *writers}
    await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in tasks:
        if task.done() and task.exception() is not None:
            for other in tasks:
                other.cancel()
            raise task.exception()  # type: ignore[misc]
    await asyncio.gather(*writers)


async def _planner(worker: Ingest, client: IngestClient, queue: asyncio.Queue[Received],
                   planned: asyncio.Queue[Planned | None], stop: asyncio.Event,
                   writers: int) -> None:
    cfg = worker.settings.ingest
    limits = {"max_messages": cfg.batch_max_messages, "max_bytes": cfg.batch_max_bytes}
    while not stop.is_set():
        batch = await collect(queue, stop=stop, max_delay=cfg.batch_max_delay_ms / 1000, **limits)
        metrics.QUEUE_DEPTH.set(queue.qsize())
        if batch:
            await planned.put((await worker.plan(batch), batch))
    client.stop_receiving()  # what arrives from now on stays unacknowledged for the next session
    while not queue.empty():  # drain: finish what was already received
        batch = await collect(queue, stop=asyncio.Event(), max_delay=0, **limits)
        await planned.put((await worker.plan(batch), batch))
    for _ in range(writers):
        await planned.put(None)


async def _writer(worker: Ingest, client: IngestClient,
                  planned: asyncio.Queue[Planned | None]) -> None:
    while (item := await planned.get()) is not None:
        plan, batch = item
        await worker.write(plan, batch)
        client.ack(plan.acks)


async def _maintain(worker: Ingest, stop: asyncio.Event) -> None:
    """Partitions ahead and retention, now and then (any worker; they take turns)."""
    cfg = worker.settings.ingest
    while not stop.is_set():
        try:
            async with worker.pool.acquire() as con:
                report = await run_maintenance(
                    con, now=datetime.now(UTC), retention_days=cfg.retention_days,
                    dead_letter_retention_days=cfg.dead_letter_retention_days)
            metrics.MAINTENANCE.labels("ok").inc()
            if report.dropped:
                log.info("maintenance: %s", report)
        except (asyncpg.PostgresError, *TRANSIENT) as exc:
            metrics.MAINTENANCE.labels("failed").inc()
            log.warning("maintenance failed (%s); next try in %.0fs", exc,
                        cfg.maintenance_interval_s)
        if cfg.forecast_refit_s is not None and not stop.is_set():
            await _forecast(worker)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), cfg.maintenance_interval_s)


async def _forecast(worker: Ingest) -> None:
    """The forecasts' part of maintenance (``ingest.forecasting``): its failure is logged and
    counted, and never stops the rest."""
    cfg = worker.settings.ingest
    started = time.perf_counter()
    try:
        async with worker.pool.acquire() as con:
            report = await run_forecasts(
                con, now=datetime.now(UTC), history_days=cfg.forecast_history_days,
                refit_s=cfg.forecast_refit_s or 0.0, budget_s=cfg.forecast_budget_s)
    except (asyncpg.PostgresError, *TRANSIENT) as exc:
        metrics.MAINTENANCE.labels("forecast_failed").inc()
        log.warning("forecast maintenance failed (%s); next try in %.0fs", exc, cfg.maintenance_interval_s)
        return
    if report.ran:
        metrics.FORECAST_RUN_SECONDS.observe(time.perf_counter() - started)
        metrics.FORECAST_COUNT_ROWS.inc(report.counts.rows)
    if report.refitted or report.failed or report.due_left or report.counts.behind:
        log.info("forecast maintenance: %s", report)
