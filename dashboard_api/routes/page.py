"""``/``: the live web page (static HTML and vanilla JavaScript, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(tags=["web page"])


@router.get("/", summary="The live web page", response_class=FileResponse, include_in_schema=False)
async def index() -> FileResponse:
    """Sites with live counts, refreshed every 2 s; a site's zones and spaces on click."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
