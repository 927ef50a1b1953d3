"""The FastAPI application: ``create_app(settings)``.

The lifespan owns the asyncpg pool (small: every request holds a connection
for one query only). Errors of this package become JSON problems: ``NotFound``
→ 404, ``DatabaseUnavailable`` and lost connections → 503.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from dashboard_api import DatabaseUnavailable, NotFound
from dashboard_api.routes import health, metrics, page, sites
from occupancy.config import Settings

log = logging.getLogger(__name__)

POOL_MIN, POOL_MAX = 1, 8
DESCRIPTION = """\
Live occupancy of municipal parking lots and produce bazaars.

Public and read-only: sites near a point with free / occupied / unknown counts,
one site with its zones, and the state of every space. A space counts as free
or occupied only when its last observation is fresh and its gateway has not
gone offline since; otherwise it is `unknown` (see docs/api.md).
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
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="parkbazaar", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(metrics.MetricsMiddleware)
    _add_error_handlers(app)
    for module in (sites, health, metrics, page):
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
    for exc_type in (DatabaseUnavailable, asyncpg.PostgresConnectionError,
                     asyncpg.InterfaceError, ConnectionError):
        app.add_exception_handler(exc_type, unavailable)
