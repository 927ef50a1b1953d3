"""Free-space forecasts in ingest's maintenance: each site's counts kept current
(``ingest.site_counts``) and each site's model refitted (``site_forecasts``,
migration 012), for the API to predict with (docs/forecast.md).

How this works. One worker at a time (a session advisory lock; the others skip
the run). First the counts, then the refits, each phase within
``forecast_budget_s``. A site is *due* when it has counts newer than its model
was trained on and either has no model or a model older than
``forecast_refit_s`` (``due``, pure). Due sites are refitted tenant by tenant,
oldest model first: the tenant's counts of the last ``forecast_history_days``
(every live site of the tenant, because ``fit_many`` pools what its sites share),
its time zone and holidays go to ``occupancy.forecast.fit_many`` in a worker
thread (the event loop keeps serving the pipeline), and the models of the due
sites are written in one transaction. The deadline is checked between tenants.

Bad data never stops maintenance: a tenant whose fit fails (a time zone the
system does not know, anything numpy refuses) is logged, counted as failed
and noted in ``forecast_failures`` (not tried again before ``forecast_refit_s``),
its sites keep their previous models, and the next tenant goes on.
Only the database's own errors leave this module (the caller retries them
on its next run).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ingest import metrics
from ingest.site_counts import CountsReport, refresh_counts
from occupancy.forecast import Series, SiteModel, fit_many
from occupancy.forecast.counts import series_of_counts
from occupancy.forecast.localtime import day_number

log = logging.getLogger(__name__)

_LOCK_KEY = 0x70A2_B0A8

_SITES_SQL = """
SELECT s.id, s.tenant_id, f.fitted_at, f.trained_to,
       (SELECT max(c.at) FROM site_counts_5m c WHERE c.site_id = s.id) AS last_at
FROM sites s LEFT JOIN site_forecasts f ON f.site_id = s.id
LEFT JOIN forecast_failures x ON x.tenant_id = s.tenant_id
WHERE s.retired_at IS NULL AND (x.failed_at IS NULL OR x.failed_at <= $1)
"""
_FAILED_SQL = """
INSERT INTO forecast_failures (tenant_id, failed_at, error) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id) DO UPDATE SET failed_at = EXCLUDED.failed_at, error = EXCLUDED.error
"""
_TENANT_SQL = """
SELECT t.slug, t.timezone, coalesce(
    (SELECT array_agg(h.day ORDER BY h.day) FROM tenant_holidays h WHERE h.tenant_id = t.id),
    '{}') AS holidays
FROM tenants t WHERE t.id = $1
"""
_COUNTS_SQL = """
SELECT c.site_id, array_agg(extract(epoch FROM c.at)::float8 ORDER BY c.at) AS t,
       array_agg(c.free ORDER BY c.at) AS free, array_agg(c.occupied ORDER BY c.at) AS occupied,
       array_agg(c.total ORDER BY c.at) AS total
FROM site_counts_5m c JOIN sites s ON s.id = c.site_id
WHERE s.tenant_id = $1 AND s.retired_at IS NULL AND c.at >= $2
GROUP BY c.site_id
"""
_STORE_SQL = """
INSERT INTO site_forecasts (site_id, fitted_at, method, model, trained_from, trained_to, trained_rows)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)
ON CONFLICT (site_id) DO UPDATE SET
    fitted_at = EXCLUDED.fitted_at, method = EXCLUDED.method, model = EXCLUDED.model,
    trained_from = EXCLUDED.trained_from, trained_to = EXCLUDED.trained_to,
    trained_rows = EXCLUDED.trained_rows
"""


@dataclass(frozen=True, slots=True)
class ForecastReport:
    ran: bool
    counts: CountsReport = field(default_factory=CountsReport)
    refitted: int = 0  # sites whose model was written
    failed: int = 0  # due sites of tenants whose fit failed
    due_left: int = 0  # due sites left for the next run (the deadline came first)


@dataclass(frozen=True, slots=True)
class SiteRow:
    """What decides whether a site is due (from ``_SITES_SQL``)."""

    site_id: int
    tenant_id: int
    fitted_at: datetime | None
    trained_to: datetime | None
    last_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Counts:
    first: datetime | None
    last: datetime | None
    series: Series


def due(site: SiteRow, *, now: datetime, refit_s: float) -> bool:
    """Whether a site's model should be refitted now (pure): it has counts it was not
    trained on, and no model or one older than ``refit_s``."""
    if site.last_at is None or (site.trained_to is not None and site.last_at <= site.trained_to):
        return False
    return site.fitted_at is None or site.fitted_at <= now - timedelta(seconds=refit_s)


def due_by_tenant(sites: Sequence[SiteRow], *, now: datetime, refit_s: float) -> list[list[SiteRow]]:
    """The due sites grouped by tenant, the tenant with the oldest model first (pure; never
    fitted counts as oldest)."""
    groups: dict[int, list[SiteRow]] = {}
    for s in sites:
        if due(s, now=now, refit_s=refit_s):
            groups.setdefault(s.tenant_id, []).append(s)

    def oldest(group: list[SiteRow]) -> tuple[bool, datetime | None]:
        fitted = [s.fitted_at for s in group if s.fitted_at is not None]
        return (len(fitted) == len(group), min(fitted) if fitted else None)

    return sorted(groups.values(), key=lambda g: (oldest(g)[0], oldest(g)[1] or now, g[0].tenant_id))


async def run_forecasts(con: asyncpg.Connection, *, now: datetime, history_days: int, refit_s: float,
                        budget_s: float, clock: Callable[[], float] = time.monotonic) -> ForecastReport:
    """Counts, then refits, each within ``budget_s``; ``ran=False`` when another worker holds the turn."""
    if not await con.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
        return ForecastReport(ran=False)
    try:
        counts = await refresh_counts(con, now=now, history_days=history_days, deadline=clock() + budget_s,
                                      clock=clock)
        return await _refit(con, now=now, history_days=history_days, refit_s=refit_s,
                            deadline=clock() + budget_s, clock=clock, counts=counts)
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _refit(con: asyncpg.Connection, *, now: datetime, history_days: int, refit_s: float,
                 deadline: float, clock: Callable[[], float], counts: CountsReport) -> ForecastReport:
    rows = [SiteRow(r["id"], r["tenant_id"], r["fitted_at"], r["trained_to"], r["last_at"])
            for r in await con.fetch(_SITES_SQL, now - timedelta(seconds=refit_s))]
    tenants = due_by_tenant(rows, now=now, refit_s=refit_s)
    refitted = failed = left = 0
    for group in tenants:
        if clock() >= deadline:
            left += len(group)
            continue
        written = await refit_tenant(con, group[0].tenant_id, [s.site_id for s in group], now=now,
                                     history_days=history_days)
        refitted += written
        failed += len(group) - written
    metrics.FORECAST_DUE.set(left)
    return ForecastReport(ran=True, counts=counts, refitted=refitted, failed=failed, due_left=left)


async def refit_tenant(con: asyncpg.Connection, tenant_id: int, site_ids: Sequence[int], *, now: datetime,
                       history_days: int) -> int:
    """Fit the tenant's sites and store the models of ``site_ids``; the number stored (0 when
    the fit failed: logged and counted, the previous models kept)."""
    tenant = await con.fetchrow(_TENANT_SQL, tenant_id)
    counts = await _tenant_counts(con, tenant_id, now - timedelta(days=history_days))
    holidays = [day_number(d.isoformat()) for d in tenant["holidays"]]
    started = time.perf_counter()
    try:
        models, _ = await asyncio.to_thread(
            fit_many, {str(k): c.series for k, c in counts.items()}, tenant["timezone"], holidays)
    except Exception as exc:  # contained per tenant: bad data never stops maintenance
        metrics.FORECAST_REFITS.labels("failed").inc(len(site_ids))
        log.warning("forecast refit of tenant %s failed (%s: %s); its sites keep their models, next "
                    "try after forecast_refit_s", tenant["slug"], type(exc).__name__, exc)
        await con.execute(_FAILED_SQL, tenant_id, now, f"{type(exc).__name__}: {exc}"[:1000])
        return 0
    seconds = time.perf_counter() - started
    metrics.FORECAST_REFIT_SECONDS.observe(seconds)
    stored = {i: models[str(i)] for i in site_ids if str(i) in models}
    await _store(con, tenant_id, stored, counts, now)
    metrics.FORECAST_REFITS.labels("ok").inc(len(stored))
    log.info("forecasts of tenant %s: %d sites fitted in %.2f s, %d stored (%s)", tenant["slug"],
             len(counts), seconds, len(stored), _methods(stored))
    return len(stored)


async def _tenant_counts(con: asyncpg.Connection, tenant_id: int, since: datetime) -> dict[int, _Counts]:
    out: dict[int, _Counts] = {}
    for r in await con.fetch(_COUNTS_SQL, tenant_id, since):
        t = r["t"]
        series = series_of_counts(t, r["free"], r["occupied"], r["total"])
        out[r["site_id"]] = _Counts(_utc(t[0]), _utc(t[-1]), series)
    return out


async def _store(con: asyncpg.Connection, tenant_id: int, models: Mapping[int, SiteModel],
                 counts: Mapping[int, _Counts], now: datetime) -> None:
    args: list[tuple[Any, ...]] = []
    for site_id, m in models.items():
        c = counts.get(site_id)
        args.append((site_id, now, m.method, json.dumps(m.to_json()), c.first if c else None,
                     c.last if c else None, len(c.series) if c else 0))
    async with con.transaction():
        await con.executemany(_STORE_SQL, args)
        await con.execute("DELETE FROM forecast_failures WHERE tenant_id = $1", tenant_id)


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _methods(models: Mapping[int, SiteModel]) -> str:
    tally: dict[str, int] = {}
    for m in models.values():
        tally[m.method] = tally.get(m.method, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(tally.items())) or "none"
