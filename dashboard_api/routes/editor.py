"""``/admin/layout``: the operators' layout editor, a page of its own (``static/editor.*``).

It draws a camera's latest frame with its bay polygons, lets an operator draw,
move, delete and number them, and saves through the admin API
(``dashboard_api.routes.layouts``) with an admin token kept for the tab only.
Its Content-Security-Policy (``headers.editor_csp``) runs this origin's script
only, as the live page's does.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from dashboard_api.headers import editor_csp
from dashboard_api.routes.page import STATIC_DIR

router = APIRouter(tags=["web page"])


@router.get("/admin/layout", summary="The camera layout editor", response_class=FileResponse,
            include_in_schema=False)
async def layout_editor() -> FileResponse:
    return FileResponse(STATIC_DIR / "editor.html", headers={
        "Cache-Control": "no-cache", "Content-Security-Policy": editor_csp()})
