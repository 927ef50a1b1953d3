"""``/v1/sites``: sites near a point, one site with its zones, a site's spaces,
its occupancy history, and its live stream (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from dashboard_api import BadInput, NotFound, queries
from dashboard_api.deps import (
    FIRST_YEAR,
    LAST_YEAR,
    Near,
    Now,
    PoolDep,
    RadiusM,
    SettingsDep,
    SitePath,
    StepText,
    TenantPath,
    acquire,
    client_of,
    expensive,
    parse_step,
)
from dashboard_api.fairness import SingleFlight
from dashboard_api.forecasts import (
    LOOKBACK,
    MAX_ARRIVAL_SITES,
    ForecastInput,
    ModelCache,
    arrival,
    site_forecast,
)
from dashboard_api.http import cache_key, cached, encode
from dashboard_api.live import ChangeFeed, SiteKey, changes_since, current_xmin, sse
from dashboard_api.schemas import (
    History,
    SiteArrival,
    SiteDetail,
    SiteKind,
    SiteSummary,
    SpaceStatus,
    problems,
)

router = APIRouter(prefix="/v1/sites", tags=["sites"], responses=problems(429, 503))
NOT_FOUND = problems(404)
HOT: dict[int | str, dict[str, Any]] = {
    304: {"description": "not modified (the `If-None-Match` ETag is current)"}, **NOT_FOUND,
}
KEEPALIVE_S = 15.0
_EVENT_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only: \d would take "٣" too


@router.get("", summary="Sites near a point, with live counts", response_model=list[SiteArrival],
            responses={304: HOT[304]})
async def list_sites(
    request: Request, pool: PoolDep, now: Now, near: Near, radius_m: RadiusM = 5000.0,
    kind: Annotated[SiteKind | None, Query(description="only parking lots or markets")] = None,
    min_free: Annotated[int | None, Query(ge=0, le=100_000, description="at least this many free")] = None,
    arrive_in: Annotated[int | None, Query(
        ge=0, le=120, description="minutes until arrival (with `near`): each site gets its forecast on "
                                  "arrival, and the sites are ranked by it")] = None,
) -> Response:
    """Every site within `radius_m` of `near`, nearest first. Without `near`: every
    site, sorted by tenant and site, `distance_m` null (`radius_m` is then ignored).
    With `arrive_in` (needs `near`): each site also has `forecast`, its free spaces
    expected `arrive_in` minutes from now with the 80 % interval, and the sites are
    ranked by it (most expected free first, then nearest; sites with no forecast last).
    Only the 20 nearest sites get a forecast (`forecast` is null on the others); a
    miss of the cache is an expensive read (limited in time and concurrency, per client
    too: 503).
    With an `ETag`; `If-None-Match` answers 304 when nothing changed."""
    if arrive_in is not None and near is None:
        raise BadInput("`arrive_in` needs `near` (the point the driver is heading to)",
                       loc=("query", "arrive_in"))

    async def load() -> bytes:
        async with acquire(pool) as con:
            return encode(await queries.sites(con, now=now, near=near, radius_m=radius_m, kind=kind,
                                              min_free=min_free))

    async def load_arrival(minutes: int) -> bytes:
        # an expensive read (a forecast per site): a bulkhead slot for the query and the CPU
        async with expensive(request) as con:
            found = await queries.sites(con, now=now, near=near, radius_m=radius_m, kind=kind,
                                        min_free=min_free)
            nearest = [(s.tenant, s.site) for s in found[:MAX_ARRIVAL_SITES]]
            inputs = await queries.forecast_inputs(con, now=now, sites=nearest, since=now - LOOKBACK)
            return encode(rank_by_arrival(found, inputs, now=now, minutes=minutes,
                                          models=request.app.state.forecast_models))

    if arrive_in is None:
        return await cached(request, load)
    async with request.app.state.gates.gate(client_of(request), cache_key(request.scope)):
        return await cached(request, lambda: load_arrival(arrive_in))


def rank_by_arrival(found: list[SiteSummary], inputs: Mapping[tuple[str, str], ForecastInput], *,
                    now: datetime, minutes: int, models: ModelCache) -> list[SiteArrival]:
    """The sites with their forecast ``minutes`` ahead, most expected free first, then nearest."""
    out = []
    for s in found:
        inp = inputs.get((s.tenant, s.site))
        f = None if inp is None else arrival(site_forecast((s.tenant, s.site), inp, now=now,
                                                           horizons=[minutes], models=models))
        out.append(SiteArrival(**s.model_dump(), forecast=f))
    return sorted(out, key=lambda a: (a.forecast is None, -(a.forecast.free if a.forecast else 0.0),
                                      a.distance_m if a.distance_m is not None else math.inf))


@router.get("/{tenant}/{site}", summary="One site with its zones", response_model=SiteDetail,
            responses=HOT)
async def get_site(request: Request, pool: PoolDep, now: Now, tenant: TenantPath, site: SitePath) -> Response:
    """The site's live counts, per zone too, its address and opening hours (with an `ETag`).
    Served from a short in-process cache that every committed change makes stale."""
    return await _cached_site_read(request, pool, queries.site, now=now, tenant=tenant, site=site)


@router.get("/{tenant}/{site}/spaces", summary="Every space of a site",
            response_model=list[SpaceStatus], responses=HOT)
async def list_spaces(request: Request, pool: PoolDep, now: Now,
                      tenant: TenantPath, site: SitePath) -> Response:
    """Each bay or stall with its state as counted, when it was observed, and its attributes
    (with an `ETag`; served from the same short cache as the site)."""
    return await _cached_site_read(request, pool, queries.spaces, now=now, tenant=tenant, site=site)


async def _cached_site_read(request: Request, pool: asyncpg.Pool, query: Callable[..., Awaitable[Any]],
                            *, now: datetime, tenant: TenantPath, site: SitePath) -> Response:
    """``query(con, now=, tenant=, site=)`` (None: no such site → 404) through the cache."""

    async def load() -> bytes:
        async with acquire(pool) as con:
            found = await query(con, now=now, tenant=tenant, site=site)
        if found is None:
            raise NotFound(f"no site {site!r} of tenant {tenant!r}")
        return encode(found)

    return await cached(request, load)


@router.get("/{tenant}/{site}/history", summary="Occupancy history (a step function)",
            response_model=History, responses={**NOT_FOUND, **problems(503)})
async def history(
    request: Request, settings: SettingsDep, now: Now, tenant: TenantPath, site: SitePath,
    step: StepText = "5m",
    start: Annotated[datetime | None, Query(alias="from", description="ISO 8601; default: `to` − 24 h")]
    = None,
    end: Annotated[datetime | None, Query(alias="to", description="ISO 8601; default: now")] = None,
) -> Response:
    """Free / occupied / unknown / total at every `step` from `from` (aligned down to the
    step) to `to`, and at `to` itself when it is off the step grid (so the last point is
    the counts at `to`, by default now). A space keeps the state of its last observation until the next one,
    or until that observation is older than the site's `stale_after_s` (then unknown),
    so steps with no events carry the counts forward. At most `api.max_history_points`
    points (5000) a request; an expensive read (limited in time and concurrency, per
    client too: 503). Identical requests at the same time share one query, never one
    that started before them."""
    width = parse_step(step)
    history_window(start, end, now, width, settings.api.max_history_points)  # 422 before any wait
    arrived = time.monotonic()

    async def load() -> bytes:
        # A shared query may start after its first reader arrived: a default `to` is its start.
        at = now + timedelta(seconds=time.monotonic() - arrived)
        window = history_window(start, end, at, width, settings.api.max_history_points)
        async with expensive(request) as con:
            points = await queries.history(con, tenant=tenant, site=site, start=window[0], end=window[1],
                                           step=width)
            if points is None:
                raise NotFound(f"no site {site!r} of tenant {tenant!r}")
            tz = await con.fetchval("SELECT timezone FROM tenants WHERE slug = $1", tenant)
        return encode(History(tenant=tenant, site=site, step_s=int(width.total_seconds()), timezone=tz,
                              points=points))

    flights: SingleFlight[bytes] = request.app.state.flights
    key = cache_key(request.scope)
    async with request.app.state.gates.gate(client_of(request), key):
        body = await flights.run(key, load)
    return Response(body, media_type="application/json")


def history_window(start: datetime | None, end: datetime | None, now: datetime, width: timedelta,
                   max_points: int) -> tuple[datetime, datetime]:
    """(from, to) of a history request, defaults filled in; ``BadInput`` naming the parameter
    for a time without a zone, outside FIRST_YEAR…LAST_YEAR, reversed, or too many points (pure)."""
    for value, name in ((start, "from"), (end, "to")):
        if value is not None and value.tzinfo is None:
            raise BadInput(f"`{name}` needs a time zone (e.g. 2026-11-26T10:00:00Z)", loc=("query", name))
        if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise BadInput(f"`{name}` must be between the years {FIRST_YEAR} and {LAST_YEAR}",
                           loc=("query", name))
    end = end or now
    start = start or end - timedelta(days=1)
    if end <= start:
        raise BadInput("`to` must be after `from`", loc=("query", "to"))
    if (end - start) / width > max_points:
        raise BadInput(f"at most {max_points} points a request: widen `step` or narrow the range",
                       loc=("query", "step"))
    return start, end


@router.get(
    "/{tenant}/{site}/live", summary="Live changes (Server-Sent Events)", response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "`snapshot`, then `space` and `counts` events"}, **NOT_FOUND},
)
async def live(
    request: Request, pool: PoolDep, tenant: TenantPath, site: SitePath,
    last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
) -> StreamingResponse:
    """First a `snapshot` event (`{"site": …, "spaces": […]}`), then a `space` event for
    every space whose state changes and a `counts` event with the site's new counts.
    Reconnecting with `Last-Event-ID` sends what changed since that id instead of a
    snapshot, so nothing is missed. A `: keepalive` comment every 15 s."""
    feed: ChangeFeed = request.app.state.feed
    async with pool.acquire() as con:
        key = await feed.site_key(con, tenant, site)
        if key is None:
            raise NotFound(f"no site {site!r} of tenant {tenant!r}")
        sub = feed.subscribe(key)
        try:
            first = await _first_message(con, key, last_event_id)
        except BaseException:
            feed.unsubscribe(sub)
            raise

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n" + first
            while True:
                try:
                    msg = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if msg is None:
                    return
                yield msg
        finally:
            feed.unsubscribe(sub)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _first_message(con: asyncpg.Connection, key: SiteKey, last_event_id: str | None) -> str:
    now = datetime.now(UTC)
    detail = None
    if last_event_id and _EVENT_ID.fullmatch(last_event_id.strip()):
        xmin, changed = await changes_since(con, key, last_event_id.strip())
        detail = await queries.site(con, now=now, tenant=key.tenant, site=key.slug)
        return "".join(sse("space", s, xmin) for s in changed) + sse("counts", _dump(detail), xmin)
    xmin = await current_xmin(con)
    detail = await queries.site(con, now=now, tenant=key.tenant, site=key.slug)
    spaces = await queries.spaces(con, now=now, tenant=key.tenant, site=key.slug) or []
    return sse("snapshot", {"site": _dump(detail), "spaces": [s.model_dump() for s in spaces]}, xmin)


def _dump(detail: SiteDetail | None) -> dict[str, Any] | None:
    return detail.model_dump() if detail else None
