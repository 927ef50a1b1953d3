"""``/``: the live web page (static HTML and vanilla JavaScript, no build step), and
``/config.json``, what the page needs to know of the deployment (a map tile server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from dashboard_api.deps import SettingsDep

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(tags=["web page"])


@router.get("/", summary="The live web page", response_class=FileResponse, include_in_schema=False)
async def index() -> FileResponse:
    """Sites with live counts; a site's plan live over SSE; the managers' views."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/config.json", summary="Settings of the web page", include_in_schema=False)
async def config(settings: SettingsDep) -> dict[str, Any]:
    """`tile_url`: a slippy-map tile URL template (`{z}/{x}/{y}`), or null: list only."""
    return {"tile_url": settings.api.tile_url}
