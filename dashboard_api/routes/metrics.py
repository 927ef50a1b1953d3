"""``/metrics`` in the Prometheus text format, and the middleware that counts requests.

The metrics live in prometheus-client's default registry, so whatever else runs
in this process (a demo's ingest, the embedded services) shows up here too.
Requests are labelled by route template (``/v1/sites/{tenant}/{site}``), never
by raw path, so the label set stays small.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard_api.schemas import problems

router = APIRouter(tags=["operations"])

REQUESTS = Counter(
    "parkbazaar_api_requests", "HTTP requests served, by route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "parkbazaar_api_request_duration_seconds", "Time to the end of the response, by route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}, **problems(429)})
async def metrics() -> Response:
    """Request counts and latency by route, plus every metric of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Pure ASGI middleware (streams pass straight through): count and time each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
