"""Dependencies of the routes, as ``Annotated`` aliases: the pool, a connection
per request (or, for expensive reads, one behind the client's gate and the
bulkhead, with a statement timeout), the clock, the path and query parameters, validated at the edge with
ASCII-only patterns, and the caller's token."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator

from dashboard_api import DatabaseUnavailable, Forbidden, TooSlow, Unauthorized
from dashboard_api.auth import Principal, lookup_token
from dashboard_api.fairness import ClientGates
from dashboard_api.limits import REFUSED, Bulkhead
from occupancy.config import Settings

ACQUIRE_TIMEOUT_S = 2.0
NEAR_HELP = "a point as `LAT,LON` in decimal degrees (WGS 84), e.g. `29.6176,52.5447`"


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


@contextlib.asynccontextmanager
async def acquire(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection; ``DatabaseUnavailable`` when none comes within ACQUIRE_TIMEOUT_S."""
    try:
        con = await pool.acquire(timeout=ACQUIRE_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
            asyncpg.TargetServerAttributeNotMatched) as exc:  # no primary yet (failover)
        raise DatabaseUnavailable(f"no database connection: {exc or type(exc).__name__}") from exc
    try:
        yield con
    finally:
        await pool.release(con)


async def get_connection(
    pool: Annotated[asyncpg.Pool, Depends(get_pool)],
) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection for the request, released after the response."""
    async with acquire(pool) as con:
        yield con


def client_of(request: Request) -> str:
    """The client an expensive read is counted against: its address (the peer, or the
    ``X-Forwarded-For`` of a proxy uvicorn trusts)."""
    return f"address {request.client.host}" if request.client else "address ?"


@contextlib.asynccontextmanager
async def expensive(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """A connection for an expensive read: a bulkhead slot first (``Busy`` when none
    frees in time), then a pooled connection in a read-only transaction whose
    statements are cancelled after ``api.expensive_timeout_s`` (``TooSlow``). The
    caller holds its client's gate (``ClientGates``) around it."""
    bulkhead: Bulkhead = request.app.state.bulkhead
    timeout_s: float = request.app.state.settings.api.expensive_timeout_s
    async with bulkhead.slot(), acquire(request.app.state.pool) as con:
        try:
            async with con.transaction(readonly=True):
                await con.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
                yield con
        except asyncpg.QueryCanceledError as exc:
            REFUSED.labels("too_slow").inc()
            raise TooSlow(f"the read took longer than {timeout_s:g} s and was cancelled: "
                          "ask for a shorter range or a wider step") from exc


async def utcnow() -> datetime:
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


async def near_point(near: NearText = None) -> tuple[float, float] | None:
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


_STEP = re.compile(r"([0-9]{1,6})(s|m|h|d)")  # ASCII digits: \d would take "٣" or "²" too
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_STEP = timedelta(days=366)
# Dates and times a request may name: wide enough for any real data, narrow enough that no
# arithmetic on them (a day before, a step after, a time zone) leaves the calendar.
FIRST_YEAR, LAST_YEAR = 2000, 2999


def parse_step(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h``, ``1d`` → a positive timedelta of at most a year;
    ``ValueError`` otherwise (pure)."""
    m = _STEP.fullmatch(text)
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"step must be a positive number and a unit s, m, h or d (e.g. 5m), got {text!r}")
    step = timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2)])
    if step > MAX_STEP:
        raise ValueError(f"step must be at most {MAX_STEP.days}d, got {text!r}")
    return step


def check_year(value: date) -> date:
    """``value`` if its year is within FIRST_YEAR…LAST_YEAR, else ``ValueError`` (pure)."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be between the years {FIRST_YEAR} and {LAST_YEAR}, got {value.isoformat()}")
    return value


def _valid_step(text: str) -> str:
    parse_step(text)
    return text


StepText = Annotated[
    str, Query(description="grid step: `30s`, `5m`, `1h`, `1d`", examples=["5m"]),
    AfterValidator(_valid_step),
]

_REFUSED = {"unknown": "the bearer token is not valid", "revoked": "the bearer token has been revoked",
            "expired": "the bearer token has expired"}

# Path parameters: the id patterns of ``occupancy.ids`` and the site file, ASCII only, so
# that a NUL byte, "²" or any text the database could not hold is a 422 naming the parameter.
TenantPath = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}$", description="tenant id", examples=["shiraz"])]
SitePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="site id",
                               examples=["central-lot"])]
ZonePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="zone id")]
SpacePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="space id")]
GatewayPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="gateway id")]
DevicePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", description="device id")]

_bearer = HTTPBearer(auto_error=False, description="a token from `parkbazaar token create`")


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    pool: Annotated[asyncpg.Pool, Depends(get_pool)],
) -> Principal:
    """The token's principal; 401 without a token or with one that is unknown, revoked or expired."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required")
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as con:
            found = await lookup_token(con, credentials.credentials)
    except (OSError, TimeoutError, asyncpg.InterfaceError,
            asyncpg.TargetServerAttributeNotMatched) as exc:
        raise DatabaseUnavailable(f"no database connection: {exc}") from exc
    if not isinstance(found, Principal):
        raise Unauthorized(_REFUSED[found])
    return found


async def manager(request: Request, who: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """A manager (or admin) of the path's tenant and, when the path names one, its site."""
    params = request.path_params
    if not who.may_manage(params.get("tenant", ""), params.get("site")):
        raise Forbidden("this token has no rights over this tenant or site")
    return who


async def admin(request: Request, who: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """An admin (operator) of the path's tenant."""
    if not who.may_administer(request.path_params.get("tenant", "")):
        raise Forbidden("an admin token of this tenant is required")
    return who


Manager = Annotated[Principal, Depends(manager)]
Admin = Annotated[Principal, Depends(admin)]


async def get_report_connection(request: Request, who: Manager) -> AsyncIterator[asyncpg.Connection]:
    """A connection for a manager's report: the gate of the caller's token (a manager reads
    from wherever they are; an office of many shares one address), then ``expensive``."""
    gates: ClientGates = request.app.state.gates
    async with gates.gate(f"token {who.token_id}"), expensive(request) as con:
        yield con


ReportConnection = Annotated[asyncpg.Connection, Depends(get_report_connection)]
