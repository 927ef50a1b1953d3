"""The FastAPI application: ``create_app(settings)``.

The lifespan owns the asyncpg pool (small: every request holds a connection
for one query only) and the live change feed (one LISTEN connection per
process, see ``dashboard_api.live``). Errors of this package become JSON
problems: ``NotFound`` → 404, ``Unauthorized`` → 401, ``Forbidden`` → 403,
``Conflict`` → 409, ``BadInput`` → 422, ``DatabaseUnavailable`` and lost
connections → 503. Public reads are rate limited per client address.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from dashboard_api import BadInput, Conflict, DatabaseUnavailable, Forbidden, NotFound, Unauthorized
from dashboard_api.http import CachedReadFront, RateLimitMiddleware, ResponseCache
from dashboard_api.live import ChangeFeed
from dashboard_api.routes import admin, health, manage, metrics, ngsi, page, sites, tokens
from occupancy.config import Settings

log = logging.getLogger(__name__)

POOL_MIN, POOL_MAX = 1, 8
PUBLIC_PREFIXES = ("/v1/sites", "/ngsi-ld/")
DESCRIPTION = """\
Live occupancy of municipal parking lots and produce bazaars.

Public and read-only (open data, no account, rate limited per address): sites
near a point with free / occupied / unknown counts, one site with its zones, the
state of every space, occupancy history, a live stream (Server-Sent Events), and
FIWARE Smart Data Models views. A space counts as free or occupied only when its
last observation is fresh and its gateway has not gone offline since; otherwise
it is `unknown` (see docs/api.md).

Market managers (`/v1/manage/…`, a bearer token of their tenant and sites):
stalls, vendor attendance, utilization, alerts, CSV. Operators (`/v1/admin/…`,
an admin token): provisioning, gateway credentials, layout import, the audit log.
"""


def create_app(settings: Settings) -> FastAPI:
    """The API and web page, reading the database at ``settings.dsn``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.pool = await asyncpg.create_pool(
                settings.dsn, min_size=POOL_MIN, max_size=POOL_MAX, command_timeout=10
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc
        app.state.feed = ChangeFeed(settings.dsn, app.state.pool)
        app.state.feed.on_change.append(app.state.cache.clear)
        await app.state.feed.start()
        try:
            yield
        finally:
            await app.state.feed.stop()
            await app.state.pool.close()

    app = FastAPI(title="parkbazaar", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.cache = ResponseCache(settings.api.cache_ttl_s)
    # Outermost last: metrics, then the rate limit, then cache hits answered before routing.
    app.add_middleware(CachedReadFront, cache=app.state.cache, prefixes=PUBLIC_PREFIXES)
    app.add_middleware(RateLimitMiddleware, rate=settings.api.rate_limit_per_s,
                       burst=settings.api.rate_limit_burst, prefixes=PUBLIC_PREFIXES)
    app.add_middleware(metrics.MetricsMiddleware)
    _add_error_handlers(app)
    for module in (sites, ngsi, manage, admin, tokens, health, metrics, page):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    return app


def _add_error_handlers(app: FastAPI) -> None:
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable for %s: %s", request.url.path, exc)
        return JSONResponse({"detail": "database unavailable"}, status_code=503,
                            headers={"Retry-After": "2"})

    app.add_exception_handler(NotFound, not_found)
    statuses: tuple[tuple[type[Exception], int], ...] = (
        (Unauthorized, 401), (Forbidden, 403), (Conflict, 409), (BadInput, 422))
    for error, status in statuses:
        app.add_exception_handler(error, _status_handler(status))
    for exc_type in (DatabaseUnavailable, asyncpg.PostgresConnectionError,
                     asyncpg.InterfaceError, ConnectionError):
        app.add_exception_handler(exc_type, unavailable)


def _status_handler(status: int) -> Any:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    return handler
