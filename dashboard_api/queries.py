"""Every SQL query the API runs; one query per endpoint.

How this works: each query starts with a ``site`` CTE choosing the sites it is
about, then the shared ``eff`` CTE gives each of their spaces its *effective*
state under the counting rule (docs/api.md):

- ``free``/``occupied`` when ``space_state`` says so, the observation is
  fresh (``observed_at > now - site.stale_after_s``) and the gateway that
  reported it has not gone offline since (``online = false AND status_at >
  observed_at`` means it died after that observation);
- ``unknown`` otherwise: no state row, stale, reported unknown, or dead gateway.

The callers pass ``now``, so a test can place observations relative to it.
Functions are keyword-only and take their connection explicitly.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from dashboard_api.forecasts import ForecastInput
from dashboard_api.schemas import HistoryPoint, SiteDetail, SiteSummary, SpaceStatus, ZoneSummary

# The schema version this API needs (the newest migration it reads from).
REQUIRED_SCHEMA_VERSION = 13  # 013: camera layout versions and frames (the layout editor)
EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)

# $1 is always ``now``.
_EFF = """
eff AS (
    SELECT sp.id AS space_id, sp.site_id, sp.zone_id, sp.slug, sp.attributes,
           st.observed_at, st.source,
           st.observed_at <= $1::timestamptz - make_interval(secs => s.stale_after_s) AS stale,
           CASE WHEN st.state IN ('free', 'occupied')
                 AND st.observed_at > $1::timestamptz - make_interval(secs => s.stale_after_s)
                 AND NOT coalesce(g.online = false AND g.status_at > st.observed_at, false)
                THEN st.state ELSE 'unknown' END AS state
    FROM site s
    JOIN spaces sp ON sp.site_id = s.id AND sp.retired_at IS NULL
    LEFT JOIN space_state st ON st.space_id = sp.id
    LEFT JOIN gateways g ON g.id = st.gateway_id
)"""

_COUNTS = """count(e.space_id)::int AS total,
           count(*) FILTER (WHERE e.state = 'free')::int AS free,
           count(*) FILTER (WHERE e.state = 'occupied')::int AS occupied,
           count(*) FILTER (WHERE e.state = 'unknown')::int AS unknown"""

_SITE_COLS = """s.tenant, s.slug AS site, s.kind, s.name, s.name_fa, s.lat, s.lon, s.timezone,
       coalesce(c.total, 0) AS total, coalesce(c.free, 0) AS free,
       coalesce(c.occupied, 0) AS occupied, coalesce(c.unknown, 0) AS unknown,
       c.updated_at, c.updated_at <= $1::timestamptz - make_interval(secs => s.stale_after_s) AS stale"""

# Haversine great-circle distance from ($2, $3) in degrees to the site, in metres.
_DISTANCE = f"""2 * {EARTH_RADIUS_M} * asin(least(1, sqrt(
    power(sin(radians(si.lat - $2) / 2), 2)
    + cos(radians($2)) * cos(radians(si.lat)) * power(sin(radians(si.lon - $3) / 2), 2))))"""

_SITES_SQL = f"""
WITH site AS (
    SELECT * FROM (
        SELECT si.*, t.slug AS tenant, t.timezone,
               CASE WHEN $2::float8 IS NULL THEN NULL ELSE {_DISTANCE} END AS distance_m
        FROM sites si JOIN tenants t ON t.id = si.tenant_id
        WHERE ($5::text IS NULL OR si.kind = $5) AND si.retired_at IS NULL
    ) x
    WHERE distance_m IS NULL OR distance_m <= $4::float8
), {_EFF},
counts AS (
    SELECT e.site_id, {_COUNTS}, max(e.observed_at) AS updated_at FROM eff e GROUP BY e.site_id
)
SELECT {_SITE_COLS}, round(s.distance_m::numeric, 1)::float8 AS distance_m, s.address, s.opening_hours
FROM site s LEFT JOIN counts c ON c.site_id = s.id
WHERE $6::int IS NULL OR coalesce(c.free, 0) >= $6
ORDER BY s.distance_m NULLS LAST, s.tenant, s.slug
"""

_ONE_SITE = """
WITH site AS (
    SELECT si.*, t.slug AS tenant, t.timezone
    FROM sites si JOIN tenants t ON t.id = si.tenant_id
    WHERE t.slug = $2 AND si.slug = $3 AND si.retired_at IS NULL
)"""

_SITE_SQL = f"""{_ONE_SITE}, {_EFF},
counts AS (SELECT {_COUNTS}, max(e.observed_at) AS updated_at FROM eff e),
zone_counts AS (
    SELECT z.slug AS zone, z.name, z.name_fa, {_COUNTS}
    FROM site s JOIN zones z ON z.site_id = s.id AND z.retired_at IS NULL LEFT JOIN eff e ON e.zone_id = z.id
    GROUP BY z.id, z.slug, z.name, z.name_fa
)
SELECT {_SITE_COLS}, NULL::float8 AS distance_m, s.address, s.opening_hours, s.stale_after_s,
       (SELECT coalesce(json_agg(zc ORDER BY zc.zone), '[]') FROM zone_counts zc) AS zones
FROM site s CROSS JOIN counts c
"""

_SPACES_SQL = f"""{_ONE_SITE}, {_EFF}
SELECT e.slug AS space, z.slug AS zone, e.state, e.observed_at, e.source, e.stale, e.attributes
FROM site s LEFT JOIN eff e ON true LEFT JOIN zones z ON z.id = e.zone_id
ORDER BY z.slug NULLS LAST, e.slug
"""


def _json(value: Any) -> Any:
    """asyncpg hands json/jsonb over as text unless a codec is set; accept both."""
    return json.loads(value) if isinstance(value, str) else value


async def sites(
    con: asyncpg.Connection, *, now: datetime, near: tuple[float, float] | None = None,
    radius_m: float = 5000.0, kind: str | None = None, min_free: int | None = None,
) -> list[SiteSummary]:
    """Sites (of every tenant) with live counts; within ``radius_m`` of ``near``, nearest first;
    only those with at least ``min_free`` free spaces when given."""
    lat, lon = near if near else (None, None)
    rows = await con.fetch(_SITES_SQL, now, lat, lon, radius_m, kind, min_free)
    return [SiteSummary.model_validate(dict(r)) for r in rows]


async def site(con: asyncpg.Connection, *, now: datetime, tenant: str, site: str) -> SiteDetail | None:
    """One site with its zones; None when the tenant or site does not exist."""
    row = await con.fetchrow(_SITE_SQL, now, tenant, site)
    if row is None:
        return None
    values = dict(row) | {"zones": _json(row["zones"]), "opening_hours": _json(row["opening_hours"])}
    values["zones"] = [ZoneSummary.model_validate(z) for z in values["zones"]]
    return SiteDetail.model_validate(values)


async def spaces(
    con: asyncpg.Connection, *, now: datetime, tenant: str, site: str
) -> list[SpaceStatus] | None:
    """Every space of a site with its effective state; None when the site does not exist."""
    rows = await con.fetch(_SPACES_SQL, now, tenant, site)
    if not rows:
        return None
    return [
        SpaceStatus.model_validate(dict(r) | {"attributes": _json(r["attributes"])})
        for r in rows if r["space"] is not None
    ]


async def schema_version(con: asyncpg.Connection) -> int | None:
    """The newest applied migration, or None when the database was never migrated."""
    if not await con.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return None
    version: int | None = await con.fetchval("SELECT max(version) FROM schema_migrations")
    return version


# Occupancy history as a step function. Each event holds its state from its
# observed_at until the space's next event, or until it goes stale
# (observed_at + stale_after_s), whichever is first; the last event before the
# first step is carried in. Every interval emits the grid points it covers, so
# the work is proportional to events + covered points, not events × steps.
# With $6, `to` itself is a point too (when off the grid): the series ends with
# the counts at `to` — by default now, the live counts — so that a site that
# started reporting after the last grid point is not all unknown.
# $1 tenant, $2 site, $3 from, $4 to, $5 step, $6 a point at `to`.
# Exact step function from the events (last observation carried forward).
# The 5-minute rollup of migration 007 (``site_history``) is faster on long
# ranges, but shows a backfilled (late) event only after the next refresh, so
# the public endpoint keeps the exact query (docs/storage.md).
_HISTORY_SQL = """
WITH site AS (
    SELECT si.id, si.stale_after_s FROM sites si JOIN tenants t ON t.id = si.tenant_id
    WHERE t.slug = $1 AND si.slug = $2 AND si.retired_at IS NULL
),
sp AS (SELECT id, coalesce(retired_at, 'infinity') AS gone FROM spaces WHERE site_id = (SELECT id FROM site)),
g0 AS (SELECT time_bucket($5::interval, $3::timestamptz) AS t0),
grid AS (SELECT generate_series((SELECT t0 FROM g0), $4::timestamptz, $5::interval) AS t
         UNION SELECT $4::timestamptz WHERE $6::boolean),
ev AS (
    SELECT e.* FROM sp CROSS JOIN LATERAL (
        SELECT ev.space_id, ev.state, ev.observed_at, ev.seq FROM occupancy_events ev
        WHERE ev.space_id = sp.id AND ev.observed_at <= (SELECT t0 FROM g0)
        ORDER BY ev.observed_at DESC, ev.seq DESC LIMIT 1) e
    UNION ALL
    SELECT ev.space_id, ev.state, ev.observed_at, ev.seq FROM occupancy_events ev
    WHERE ev.space_id IN (SELECT id FROM sp)
      AND ev.observed_at > (SELECT t0 FROM g0) AND ev.observed_at <= $4::timestamptz
),
iv AS (
    SELECT ev.state, ev.observed_at AS a,
           least(lead(ev.observed_at, 1, 'infinity') OVER w,
                 ev.observed_at + make_interval(secs => (SELECT stale_after_s FROM site)),
                 sp.gone, $4::timestamptz + interval '1 microsecond') AS b
    FROM ev JOIN sp ON sp.id = ev.space_id
    WINDOW w AS (PARTITION BY ev.space_id ORDER BY ev.observed_at, ev.seq)
),
pts AS (
    SELECT p.t, iv.state FROM iv CROSS JOIN g0
    CROSS JOIN LATERAL generate_series(
        g0.t0 + $5::interval * greatest(0, ceil(extract(epoch FROM iv.a - g0.t0)
                                                / extract(epoch FROM $5::interval))),
        iv.b - interval '1 microsecond', $5::interval) AS p(t)
    WHERE iv.state IN ('free', 'occupied') AND iv.b > iv.a
    UNION ALL  -- the point at `to` itself, when it is off the grid
    SELECT $4::timestamptz, iv.state FROM iv
    WHERE $6::boolean AND time_bucket($5::interval, $4::timestamptz) <> $4::timestamptz
      AND iv.state IN ('free', 'occupied') AND iv.a <= $4::timestamptz AND iv.b > $4::timestamptz
)
SELECT g.t AS at,
       count(p.state) FILTER (WHERE p.state = 'free')::int AS free,
       count(p.state) FILTER (WHERE p.state = 'occupied')::int AS occupied,
       (SELECT count(*) FROM sp WHERE sp.gone > g.t)::int AS total
FROM grid g LEFT JOIN pts p ON p.t = g.t
WHERE EXISTS (SELECT FROM site)
GROUP BY g.t ORDER BY g.t
"""


async def history(
    con: asyncpg.Connection, *, tenant: str, site: str, start: datetime, end: datetime, step: timedelta,
    end_point: bool = True,
) -> list[HistoryPoint] | None:
    """Counts at every step from ``start`` (aligned down to the step) to ``end``, and at ``end``
    itself (``end_point``) when it is off the grid; None: no such site.

    The one function behind ``/history``: a maintained rollup can replace its SQL alone.
    """
    if await con.fetchval(_SITE_EXISTS_SQL, tenant, site) is None:
        return None
    rows = await con.fetch(_HISTORY_SQL, tenant, site, start, end, step, end_point)
    return [HistoryPoint(at=r["at"], free=r["free"], occupied=r["occupied"], total=r["total"],
                         unknown=r["total"] - r["free"] - r["occupied"]) for r in rows]


_SITE_EXISTS_SQL = """SELECT si.id FROM sites si JOIN tenants t ON t.id = si.tenant_id
WHERE t.slug = $1 AND si.slug = $2 AND si.retired_at IS NULL"""


_ALL_SPACES_SQL = f"""
WITH site AS (
    SELECT si.*, t.slug AS tenant, t.timezone FROM sites si JOIN tenants t ON t.id = si.tenant_id
    WHERE si.retired_at IS NULL AND ($2::text IS NULL OR t.slug = $2) AND ($3::text IS NULL OR si.slug = $3)
), {_EFF}
SELECT s.tenant, s.slug AS site, s.kind, s.lat, s.lon, e.slug AS space, e.state, e.observed_at,
       (SELECT array_agg(d.slug ORDER BY d.slug) FROM device_spaces ds JOIN devices d ON d.id = ds.device_id
        WHERE ds.space_id = e.space_id AND d.retired_at IS NULL) AS devices
FROM eff e JOIN site s ON s.id = e.site_id
WHERE $4::text IS NULL OR e.slug = $4
ORDER BY s.tenant, s.slug, e.slug
LIMIT $5 OFFSET $6
"""


async def site_rows(con: asyncpg.Connection, *, now: datetime) -> list[dict[str, Any]]:
    """Every site with its counts, address and opening hours, as plain dicts (NGSI-LD views)."""
    rows = await con.fetch(_SITES_SQL, now, None, None, 0.0, None, None)
    return [dict(r) | {"opening_hours": _json(r["opening_hours"])} for r in rows]


async def space_rows(
    con: asyncpg.Connection, *, now: datetime, tenant: str | None = None, site: str | None = None,
    space: str | None = None, limit: int = 100, offset: int = 0,
) -> list[dict[str, Any]]:
    """Spaces of every (or one) site with their effective state, site location and devices."""
    rows = await con.fetch(_ALL_SPACES_SQL, now, tenant, site, space, limit, offset)
    return [dict(r) for r in rows]


# Forecasts: each named site's live counts, its stored model, and its 5-minute counts
# from $4 on (the last week and an hour: what a prediction reads), arrays per site.
_FORECAST_SQL = f"""
WITH site AS (
    SELECT si.*, t.slug AS tenant, t.timezone
    FROM unnest($2::text[], $3::text[]) AS k(tenant, slug)
    JOIN tenants t ON t.slug = k.tenant
    JOIN sites si ON si.tenant_id = t.id AND si.slug = k.slug AND si.retired_at IS NULL
), {_EFF},
counts AS (SELECT e.site_id, {_COUNTS} FROM eff e GROUP BY e.site_id),
recent AS (
    SELECT c.site_id, array_agg(extract(epoch FROM c.at)::float8 ORDER BY c.at) AS t,
           array_agg(c.free ORDER BY c.at) AS free, array_agg(c.occupied ORDER BY c.at) AS occupied,
           array_agg(c.total ORDER BY c.at) AS total
    FROM site s JOIN site_counts_5m c ON c.site_id = s.id AND c.at >= $4 AND c.at <= $1
    GROUP BY c.site_id
)
SELECT s.tenant, s.slug AS site, s.timezone, coalesce(c.free, 0) AS free,
       coalesce(c.occupied, 0) AS occupied, coalesce(c.total, 0) AS total,
       f.fitted_at, f.model, r.t, r.free AS r_free, r.occupied AS r_occupied, r.total AS r_total
FROM site s LEFT JOIN counts c ON c.site_id = s.id LEFT JOIN site_forecasts f ON f.site_id = s.id
LEFT JOIN recent r ON r.site_id = s.id
"""


async def forecast_inputs(
    con: asyncpg.Connection, *, now: datetime, sites: list[tuple[str, str]], since: datetime,
) -> dict[tuple[str, str], ForecastInput]:
    """What forecasting each (tenant, site) needs, by (tenant, site); missing sites are absent."""
    rows = await con.fetch(_FORECAST_SQL, now, [t for t, _ in sites], [s for _, s in sites], since)
    return {(r["tenant"], r["site"]): ForecastInput(
        timezone=r["timezone"], free=r["free"], occupied=r["occupied"], total=r["total"],
        fitted_at=r["fitted_at"], model=None if r["model"] is None else _json(r["model"]),
        t=r["t"] or [], r_free=r["r_free"] or [], r_occupied=r["r_occupied"] or [],
        r_total=r["r_total"] or []) for r in rows}
