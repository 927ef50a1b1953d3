"""``/``: the live web page (static HTML and JavaScript modules, no build step; the map
library vendored under ``static/vendor/``), ``/config.json``, what the page needs to know
of the deployment (a map tile server), and what makes it installable on a phone: its
web app manifest and its service worker, served at the root so that the worker's scope
is the whole origin (a worker may only control the paths under its own URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from dashboard_api.deps import SettingsDep
from dashboard_api.headers import WORKER_CSP, page_csp

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(tags=["web page"])


@router.get("/", summary="The live web page", response_class=FileResponse, include_in_schema=False)
async def index(settings: SettingsDep) -> FileResponse:
    """Sites with live counts on a map and in a list; a site's plan live over SSE; the
    managers' views. Its Content-Security-Policy lets only this origin's script run (the
    page keeps a token)."""
    return FileResponse(STATIC_DIR / "index.html", headers={
        "Cache-Control": "no-cache", "Content-Security-Policy": page_csp(settings.api.tile_url)})


@router.get("/config.json", summary="Settings of the web page", include_in_schema=False)
async def config(settings: SettingsDep) -> dict[str, Any]:
    """`tile_url`: a slippy-map tile URL template (`{z}/{x}/{y}`), or null: no tiles."""
    return {"tile_url": settings.api.tile_url}


@router.get("/manifest.webmanifest", summary="The page's web app manifest", include_in_schema=False)
async def manifest() -> FileResponse:
    return FileResponse(STATIC_DIR / "manifest.webmanifest", media_type="application/manifest+json",
                        headers={"Cache-Control": "no-cache"})


@router.get("/sw.js", summary="The page's service worker", include_in_schema=False)
async def service_worker() -> FileResponse:
    """Never cached by HTTP (a new worker must reach phones), and under a policy that
    lets it fetch from this origin only."""
    return FileResponse(STATIC_DIR / "sw.js", media_type="text/javascript", headers={
        "Cache-Control": "no-cache", "Content-Security-Policy": WORKER_CSP})
