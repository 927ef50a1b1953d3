"""Dependencies of the routes, as ``Annotated`` aliases: the pool, a connection
per request, the clock, and the parsed query parameters."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
from fastapi import Depends, Query, Request
from pydantic import AfterValidator

from dashboard_api import DatabaseUnavailable
from occupancy.config import Settings

ACQUIRE_TIMEOUT_S = 2.0
NEAR_HELP = "a point as `LAT,LON` in decimal degrees (WGS 84), e.g. `29.6176,52.5447`"


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def get_connection(
    pool: Annotated[asyncpg.Pool, Depends(get_pool)],
) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection for the request, released after the response."""
    try:
        con = await pool.acquire(timeout=ACQUIRE_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(f"no database connection: {exc or type(exc).__name__}") from exc
    try:
        yield con
    finally:
        await pool.release(con)


def utcnow() -> datetime:
    """The request's clock (one place to read it; tests may override this dependency)."""
    return datetime.now(UTC)


def parse_near(text: str) -> tuple[float, float]:
    """``"LAT,LON"`` → (lat, lon); ``ValueError`` saying what is wrong (pure)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"near must be LAT,LON (two numbers and a comma), got {text!r}")
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"near must be two decimal numbers LAT,LON, got {text!r}") from None
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise ValueError(f"near: latitude must be between -90 and 90, got {parts[0].strip()}")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise ValueError(f"near: longitude must be between -180 and 180, got {parts[1].strip()}")
    return lat, lon


def _valid_near(text: str | None) -> str | None:
    if text is not None:
        parse_near(text)  # a ValueError here is a 422 naming `near`, beside any other bad parameter
    return text


NearText = Annotated[
    str | None,
    Query(description=NEAR_HELP, examples=["29.6176,52.5447"]),
    AfterValidator(_valid_near),
]


def near_point(near: NearText = None) -> tuple[float, float] | None:
    """The ``near`` query parameter as (lat, lon), already validated."""
    return parse_near(near) if near is not None else None


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
Connection = Annotated[asyncpg.Connection, Depends(get_connection)]
Now = Annotated[datetime, Depends(utcnow)]
Near = Annotated[tuple[float, float] | None, Depends(near_point)]
RadiusM = Annotated[
    float,
    Query(gt=0, le=100_000, description="search radius around `near` in metres (max 100 km)"),
]
