"""``/v1/manage/{tenant}/…``: what market managers read (a bearer token of the tenant and site).

Times are UTC in JSON and the tenant's local time in CSV; dates are local,
with their Solar Hijri (Jalali) form beside them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator

from dashboard_api import BadInput, NotFound, market, queries
from dashboard_api.auth import Principal
from dashboard_api.deps import (
    Connection,
    Manager,
    Now,
    PoolDep,
    ReportConnection,
    SitePath,
    TenantPath,
    check_year,
    get_principal,
)
from dashboard_api.jalali import jalali_iso
from dashboard_api.live import sse
from dashboard_api.schemas import (
    Alert,
    Attendance,
    History,
    SpaceStatus,
    Utilization,
    problems,
)
from dashboard_api.token_guard import guarded

router = APIRouter(prefix="/v1/manage", tags=["market managers"], responses=problems(429, 503))
AUTH = problems(401, 403, 404)
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}
Format = Annotated[Literal["json", "csv"], Query(description="`csv` for a spreadsheet")]
DayParam = Annotated[
    date | None, Query(description="local date (ISO), years 2000–2999; default: today in the tenant's zone"),
    AfterValidator(lambda d: d if d is None else check_year(d)),
]
DateParam = Annotated[date | None, AfterValidator(lambda d: d if d is None else check_year(d))]
ALERTS_POLL_S = 10.0
MAX_RANGE_DAYS = 366


async def _site(con: Any, tenant: TenantPath, site: SitePath) -> dict[str, Any]:
    info = await market.site_info(con, tenant, site)
    if info is None:
        raise NotFound(f"no site {site!r} of tenant {tenant!r}")
    return info


def _today(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


def _csv(text: str, name: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/whoami", summary="The token's tenant, role and sites",
            responses=problems(401))
async def whoami(who: Annotated[Principal, Depends(get_principal)]) -> dict[str, Any]:
    """What the web page shows after a manager entered a token."""
    return {"tenant": who.tenant, "role": who.role, "sites": list(who.sites)}


@router.get("/{tenant}/sites/{site}/stalls", summary="Stalls now, with vendors", responses=AUTH)
async def stalls(_: Manager, con: Connection, now: Now,
                 tenant: TenantPath, site: SitePath) -> list[SpaceStatus]:
    """Every stall (or bay) with its state as counted and its attributes (vendor, category)."""
    found = await queries.spaces(con, now=now, tenant=tenant, site=site)
    if found is None:
        raise NotFound(f"no site {site!r} of tenant {tenant!r}")
    return found


@router.get("/{tenant}/sites/{site}/day", summary="Occupancy over a local day", responses=AUTH)
async def day(
    _: Manager, con: ReportConnection, now: Now, tenant: TenantPath, site: SitePath, date: DayParam = None,
    step_min: Annotated[int, Query(ge=1, le=240, description="minutes between points")] = 15,
) -> History:
    """The site's counts every `step_min` minutes over the local day (a step function)."""
    info = await _site(con, tenant, site)
    day = date or _today(now, info["timezone"])
    window = market.opening_window(day, None, info["timezone"])
    assert window is not None
    step = timedelta(minutes=step_min)
    end = min(window[1] - timedelta(microseconds=1), now)
    if end < window[0]:
        raise BadInput("that day has not started yet", loc=("query", "date"))
    # a day in progress ends with its counts now; a past day at its last step before closing
    points = await queries.history(con, tenant=tenant, site=site, start=window[0], end=end, step=step,
                                   end_point=end == now)
    return History(tenant=tenant, site=site, step_s=step_min * 60, timezone=info["timezone"],
                   points=points or [])


@router.get("/{tenant}/sites/{site}/attendance", summary="Vendor attendance on a day",
            responses={**AUTH, **CSV})
async def attendance(
    _: Manager, con: ReportConnection, now: Now, tenant: TenantPath, site: SitePath, date: DayParam = None,
    format: Format = "json",
) -> Attendance:
    """Per stall within the opening hours: first arrival, last departure, minutes occupied,
    absent (never occupied). A day the market is closed says `closed` and lists no times."""
    info = await _site(con, tenant, site)
    tz = info["timezone"]
    day = date or _today(now, tz)
    window = market.opening_window(day, info["opening_hours"], tz)
    stalls_ = [] if window is None else await market.attendance(
        con, site_id=info["id"], window=window, stale_after_s=info["stale_after_s"], now=now)
    result = Attendance(
        tenant=tenant, site=site, date=day.isoformat(), date_jalali=jalali_iso(day), timezone=tz,
        opens_at=window[0] if window else None, closes_at=window[1] if window else None,
        closed=window is None, stalls=stalls_)
    if format == "csv":
        return _csv(market.attendance_csv(day, stalls_, tz), f"attendance-{site}-{day}.csv")  # type: ignore[return-value]
    return result


@router.get("/{tenant}/sites/{site}/utilization", summary="Utilization by hour of day",
            responses={**AUTH, **CSV})
async def utilization(
    _: Manager, con: ReportConnection, now: Now, tenant: TenantPath, site: SitePath,
    start: Annotated[DateParam, Query(alias="from", description="first local date; default: 7 days ago")]
    = None,
    end: Annotated[DateParam, Query(alias="to", description="last local date; default: today")] = None,
    format: Format = "json",
) -> Utilization:
    """Share of stall-time occupied in each local hour of day (0–23), over the dates."""
    info = await _site(con, tenant, site)
    tz = info["timezone"]
    last = end or _today(now, tz)
    first = start or last - timedelta(days=6)
    days = (last - first).days + 1
    if not 1 <= days <= MAX_RANGE_DAYS:
        raise BadInput(f"`to` must be on or after `from`, at most {MAX_RANGE_DAYS} days", loc=("query", "to"))
    zone = ZoneInfo(tz)
    lo = datetime.combine(first, datetime.min.time(), zone)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    hours = await market.utilization(con, site_id=info["id"], start=lo, end=hi,
                                     stale_after_s=info["stale_after_s"], now=now, tz=tz, days=days)
    if format == "csv":
        return _csv(market.utilization_csv(hours), f"utilization-{site}-{first}-{last}.csv")  # type: ignore[return-value]
    return Utilization(tenant=tenant, site=site, start=first.isoformat(), end=last.isoformat(),
                       start_jalali=jalali_iso(first), end_jalali=jalali_iso(last), timezone=tz, hours=hours)


async def _tenant_tz(con: Any, tenant: str) -> str:
    tz: str | None = await con.fetchval("SELECT timezone FROM tenants WHERE slug = $1", tenant)
    if tz is None:
        raise NotFound(f"no tenant {tenant!r}")
    return tz


@router.get("/{tenant}/alerts", summary="Alerts of the token's sites", responses={**AUTH, **CSV})
async def alerts(
    who: Manager, con: ReportConnection, now: Now, tenant: TenantPath, format: Format = "json",
) -> list[Alert]:
    """Devices silent past their site's bound, gateways offline, low batteries (< 20 %),
    stalls absent 30 minutes after the market opened."""
    tz = await _tenant_tz(con, tenant)
    found = await market.alerts(con, tenant=tenant, sites=_scope(who), now=now)
    if format == "csv":
        return _csv(market.alerts_csv(found, tz), f"alerts-{tenant}.csv")  # type: ignore[return-value]
    return found


def _scope(who: Principal) -> tuple[str, ...]:
    return () if who.role == "admin" else who.sites


@router.get("/{tenant}/alerts/live", summary="Alerts as Server-Sent Events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}, **AUTH})
async def alerts_live(who: Manager, request: Request, pool: PoolDep, tenant: TenantPath) -> StreamingResponse:
    """An `alerts` event with the whole current list first and whenever it changes. When the
    token is revoked or expires, a `closed` event (`{"reason": …}`) and the stream ends."""
    async with pool.acquire() as con:
        await _tenant_tz(con, tenant)

    async def stream() -> AsyncIterator[str]:
        last = None
        while not await request.is_disconnected():
            async with pool.acquire() as con:
                items = await market.alerts(con, tenant=tenant, sites=_scope(who), now=datetime.now(UTC))
            text = json.dumps([a.model_dump(mode="json") for a in items], sort_keys=True)
            yield sse("alerts", json.loads(text)) if text != last else ": keepalive\n\n"
            last = text
            await asyncio.sleep(ALERTS_POLL_S)

    return StreamingResponse(guarded(stream(), pool, who.token_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
