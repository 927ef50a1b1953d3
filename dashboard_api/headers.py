"""Security headers on every response, the pages' Content-Security-Policy, and the API
docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served from an installed package.

How this works: ``SecurityHeaders`` (pure ASGI) adds ``X-Content-Type-Options:
nosniff``, ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer`` to every
response, and a Content-Security-Policy that allows nothing (``default-src
'none'; frame-ancestors 'none'``) to any response that does not bring its own:
JSON needs no script, style or frame. The pages bring their own: the web page's
(``page_csp``) allows its own script, stylesheet and API, its manifest and service
worker (both from ``default-src 'self'``), and images from the configured tile
server, added only when one is configured; the worker's own (``WORKER_CSP``) only
fetches from this origin; the docs pages' (``docs_csp``) allow the exact inline
script FastAPI writes into them, by its hash. A manager's token lives in the
page's ``sessionStorage``, so no script from anywhere else may run on this origin
— which is why the docs' assets come from the ``fastapi-offline`` package (Swagger
UI and ReDoc bundles) and never from a CDN.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
          (b"referrer-policy", b"no-referrer"))
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# the page's service worker: it fetches the page, its files and the site list of this origin
WORKER_CSP = "default-src 'none'; connect-src 'self'"
_CSP = b"content-security-policy"
_API_CSP = (_CSP, API_CSP.encode())
DOCS_ASSETS = "/docs-assets"
DOCS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_TEMPLATE = re.compile(r"\{[^}]*\}")


class SecurityHeaders:
    """Pure ASGI middleware: the headers of ``ALWAYS`` on every response, and ``API_CSP``
    on those that set no Content-Security-Policy of their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers += ALWAYS if any(k == _CSP for k, _ in headers) else (*ALWAYS, _API_CSP)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def source_of(url: str) -> str:
    """The CSP source of a tile URL template: its scheme and host, a ``{s}`` label as
    ``*`` (``https://{s}.tile.example/{z}/{x}/{y}.png`` → ``https://*.tile.example``) (pure)."""
    parts = urlsplit(url)
    host = _TEMPLATE.sub("*", parts.netloc)
    return f"{parts.scheme}://{host}" if parts.scheme and host else "'self'"


def page_csp(tile_url: str | None) -> str:
    """The web page's policy: its own script, styles and API; map tiles from ``tile_url``
    (and ``data:``, the blank image Leaflet puts in place of a tile it stops loading)."""
    images = "'self'" + (f" data: {source_of(tile_url)}" if tile_url else "")
    return ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            f"img-src {images}; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


def docs_csp(html: str) -> str:
    """A docs page's policy: scripts of this origin and the page's inline ones by hash;
    inline styles, data: images and blob: workers, which Swagger UI and ReDoc use (pure)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html))
    return (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'").replace("  ", " ")


def add_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), their assets under ``DOCS_ASSETS``."""
    assert app.openapi_url is not None
    pages = {
        "/docs": get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png"),
        "/redoc": get_redoc_html(
            openapi_url=app.openapi_url, title=f"{app.title} — API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False),
    }
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_DIR), name="docs-assets")
    for path, page in pages.items():
        app.add_api_route(path, _static_page(bytes(page.body).decode()), include_in_schema=False,
                          methods=["GET"])


def _static_page(html: str) -> Callable[[], Awaitable[HTMLResponse]]:
    headers = {"Content-Security-Policy": docs_csp(html), "Cache-Control": "no-cache"}

    async def show() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    return show


def editor_csp() -> str:
    """The layout editor's policy (``/admin/layout``): the web page's, without map tiles, and
    with ``blob:`` images — the camera frame, fetched with the admin token and shown from memory."""
    return page_csp(None).replace("img-src 'self'", "img-src 'self' blob:")
