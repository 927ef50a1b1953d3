"""``/``: the live web page (static HTML and vanilla JavaScript, no build step), and
``/config.json``, what the page needs to know of the deployment (a map tile server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from dashboard_api.deps import SettingsDep
from dashboard_api.headers import page_csp

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(tags=["web page"])


@router.get("/", summary="The live web page", response_class=FileResponse, include_in_schema=False)
async def index(settings: SettingsDep) -> FileResponse:
    """Sites with live counts; a site's plan live over SSE; the managers' views. Its
    Content-Security-Policy lets only this origin's script run (the page keeps a token)."""
    return FileResponse(STATIC_DIR / "index.html", headers={
        "Cache-Control": "no-cache", "Content-Security-Policy": page_csp(settings.api.tile_url)})


@router.get("/config.json", summary="Settings of the web page", include_in_schema=False)
async def config(settings: SettingsDep) -> dict[str, Any]:
    """`tile_url`: a slippy-map tile URL template (`{z}/{x}/{y}`), or null: list only."""
    return {"tile_url": settings.api.tile_url}
