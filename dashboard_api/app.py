"""The FastAPI application: ``create_app(settings)``.

The lifespan owns the asyncpg pool (small: every request holds a connection
for one query only), the bulkhead of expensive reads with its per-client gates
and shared flights (``dashboard_api.fairness``), and the live change feed
(one LISTEN connection per process, see ``dashboard_api.live``). Errors become
JSON answers as ``dashboard_api.errors`` tabulates them.

Middleware, outermost first: request metrics; security headers; rate limits
per class of route and for failed authentications; the request body limit;
the cached-read front. Everything a client can be refused for is refused there,
before routing, body, token or database (``dashboard_api.limits``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dashboard_api import DatabaseUnavailable
from dashboard_api.errors import add_error_handlers
from dashboard_api.fairness import ClientGates, SingleFlight
from dashboard_api.forecasts import ModelCache
from dashboard_api.headers import SecurityHeaders, add_docs
from dashboard_api.http import CachedReadFront, ResponseCache
from dashboard_api.limits import BodyLimitMiddleware, Bulkhead, RateClass, RateLimitMiddleware
from dashboard_api.live import ChangeFeed
from dashboard_api.routes import (
    admin,
    editor,
    forecast,
    health,
    layouts,
    manage,
    metrics,
    ngsi,
    page,
    sites,
    tokens,
)
from occupancy.config import ApiSettings, Settings

log = logging.getLogger(__name__)

POOL_MIN = 1
PUBLIC_PREFIXES = ("/v1/sites", "/ngsi-ld/")
# The bodies allowed up to ``api.max_import_bytes``: a whole tenant's site file, a camera layout or frame.
IMPORT_PATHS = re.compile(r"^/v1/admin/[^/]+/(layout|sites/[^/]+/devices/[^/]+/(polygons|layout|frame))$")
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


def rate_classes(api: ApiSettings) -> tuple[list[RateClass], RateClass, RateClass]:
    """(classes by path prefix, the default class, the failed-authentication class)."""
    classes = [
        RateClass("manage", api.manage_rate.per_s, api.manage_rate.burst, ("/v1/manage/",), guarded=True),
        RateClass("admin", api.admin_rate.per_s, api.admin_rate.burst, ("/v1/admin/",), guarded=True),
        RateClass("ops", api.ops_rate.per_s, api.ops_rate.burst, ("/metrics", "/healthz", "/readyz")),
    ]
    public = RateClass("public", api.rate_limit_per_s, api.rate_limit_burst)
    return classes, public, RateClass("auth", api.auth_failure_rate.per_s, api.auth_failure_rate.burst)


def create_app(settings: Settings) -> FastAPI:
    """The API and web page, reading the database at ``settings.dsn``."""
    api = settings.api

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.pool = await asyncpg.create_pool(
                settings.dsn, min_size=POOL_MIN, max_size=api.pool_size, command_timeout=10
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc
        app.state.bulkhead = Bulkhead(api.expensive_concurrency, api.expensive_wait_s, api.expensive_queue)
        app.state.gates = ClientGates(api.expensive_per_client, api.expensive_client_queue,
                                      api.expensive_wait_s)
        app.state.flights = SingleFlight[bytes]()
        app.state.feed = ChangeFeed(settings.dsn, app.state.pool)
        app.state.feed.on_change.append(app.state.cache.clear)
        await app.state.feed.start()
        try:
            yield
        finally:
            await app.state.feed.stop()
            await app.state.pool.close()

    app = FastAPI(title="parkbazaar", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.cache = ResponseCache(api.cache_ttl_s)
    app.state.forecast_models = ModelCache()
    # Added innermost first: the cache front, the body limit, the rate limits, headers, metrics.
    app.add_middleware(CachedReadFront, cache=app.state.cache, prefixes=PUBLIC_PREFIXES)
    app.add_middleware(BodyLimitMiddleware, max_bytes=api.max_body_bytes, large_bytes=api.max_import_bytes,
                       large_paths=IMPORT_PATHS)
    if api.rate_limit_per_s > 0:
        classes, default, failures = rate_classes(api)
        app.add_middleware(RateLimitMiddleware, classes=classes, default=default, auth_failures=failures)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(metrics.MetricsMiddleware)
    add_error_handlers(app)
    for module in (sites, forecast, ngsi, manage, admin, layouts, tokens, health, metrics, page, editor):
        app.include_router(module.router)
    if api.docs:
        add_docs(app)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    return app
