"""``/v1/sites/{tenant}/{site}/forecast``: a site's free spaces ahead (docs/forecast.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import AfterValidator

from dashboard_api import NotFound, queries
from dashboard_api.deps import Now, PoolDep, SitePath, TenantPath, acquire
from dashboard_api.forecasts import DEFAULT_HORIZONS, LOOKBACK, ModelCache, parse_horizons, site_forecast
from dashboard_api.http import cached, encode
from dashboard_api.schemas import SiteForecast, problems

router = APIRouter(prefix="/v1/sites", tags=["sites"], responses=problems(429, 503))


def _valid_horizons(text: str) -> str:
    parse_horizons(text)  # a ValueError here is a 422 naming `horizons`
    return text


HorizonsText = Annotated[
    str,
    Query(description="minutes ahead, whole numbers 1–120, comma-separated (at most 12)",
          examples=["15,30,60"]),
    AfterValidator(_valid_horizons),
]


def models_of(request: Request) -> ModelCache:
    """The process's parsed forecast models."""
    cache: ModelCache = request.app.state.forecast_models
    return cache


@router.get("/{tenant}/{site}/forecast", summary="Free spaces ahead, with an 80 % interval",
            response_model=SiteForecast,
            responses={304: {"description": "not modified (the `If-None-Match` ETag is current)"},
                       **problems(404)})
async def forecast(request: Request, pool: PoolDep, now: Now, tenant: TenantPath, site: SitePath,
                   horizons: HorizonsText = DEFAULT_HORIZONS) -> Response:
    """Expected free spaces `minutes` after now for each horizon, with the 10th and 90th
    percentiles (`lo80`, `hi80`). `method` says what the forecast rests on: the site's
    model fitted by ingest's maintenance from its history, or, for a site without one,
    `persistence` (its current count carried forward, said in `note`). Cached like the
    site itself (with an `ETag`)."""
    wanted = parse_horizons(horizons)
    models = models_of(request)

    async def load() -> bytes:
        async with acquire(pool) as con:
            found = await queries.forecast_inputs(con, now=now, sites=[(tenant, site)], since=now - LOOKBACK)
        if (tenant, site) not in found:
            raise NotFound(f"no site {site!r} of tenant {tenant!r}")
        return encode(site_forecast((tenant, site), found[tenant, site], now=now, horizons=wanted,
                                    models=models))

    return await cached(request, load)
