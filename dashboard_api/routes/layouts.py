"""``/v1/admin/{tenant}/sites/{site}/devices/{device}/…``: a camera's layout and frame,
for the layout editor (``/admin/layout``) and the gateway's ``parkbazaar layout`` command.

``layout`` is the polygons in force (read, or replaced by a save); ``layouts``
their history (``dashboard_api.layouts``); ``frame`` the camera's latest image
(``dashboard_api.frames``). Every write is audited, in the same transaction.
A save may name the version it was edited from (``base``): if another save came
in between, it is refused with 409 rather than silently undoing that one.
"""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import Field, StringConstraints

from dashboard_api import Conflict, frames, layouts, registry
from dashboard_api.bodies import SLUG, Body
from dashboard_api.deps import Admin, Connection, DevicePath, SitePath, TenantPath
from dashboard_api.schemas import problems

router = APIRouter(prefix="/v1/admin/{tenant}/sites/{site}/devices/{device}", tags=["operators"],
                   responses=problems(429, 503))
READ = problems(401, 403, 404)
WRITE = problems(400, 401, 403, 404, 409, 413)

Coordinate = Annotated[float, Field(ge=0, le=65535)]
Point = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]
Polygon = Annotated[list[Point], Field(min_length=3, max_length=64)]
SpaceKey = Annotated[str, StringConstraints(pattern=SLUG)]


class LayoutIn(Body):
    """A camera's whole layout: space id → image polygon (pixels, ``[[x, y], …]``)."""

    spaces: dict[SpaceKey, Polygon] = Field(max_length=5000,
                                            description="space id → polygon of 3..64 points")
    base: int | None = Field(default=None, ge=1, description=(
        "the version this layout was edited from (null: the camera had none); another save "
        "since then is a 409. Leave it out to save regardless."))


async def _camera(con: Connection, tenant: str, site: str, device: str) -> int:
    return await layouts.camera_id(con, await registry.site_id(con, tenant, site), site, device)


@router.get("/layout", responses=READ, summary="A camera's polygons in force, with their version")
async def get_layout(_: Admin, con: Connection, tenant: TenantPath, site: SitePath,
                     device: DevicePath) -> dict[str, Any]:
    """`{"device", "site", "version" (null: set before versions were kept), "spaces": {id: polygon}}`."""
    found = await layouts.current(con, await _camera(con, tenant, site, device))
    return {"device": device, "site": site, **found}


@router.put("/layout", responses=WRITE, summary="Save a camera's polygons: a new layout version")
async def save_layout(who: Admin, con: Connection, tenant: TenantPath, site: SitePath,
                      device: DevicePath, body: LayoutIn) -> dict[str, Any]:
    """Replaces the camera's spaces and polygons (the spaces must exist in the site);
    the new version's number is returned. Audited as `device.update` with the version."""
    async with con.transaction():
        camera = await _camera(con, tenant, site, device)
        if "base" in body.model_fields_set:
            now = await layouts.latest(con, camera, lock=True)
            if now != body.base:
                raise Conflict(f"the layout of {device!r} is at version {now} now, not {body.base}: "
                               "someone saved since you loaded it (reload, then edit again)")
        version = await registry.update_device(con, who, tenant, site, device, {"spaces": body.spaces},
                                               layout_source="editor")
    return {"device": device, "version": version, "spaces": len(body.spaces)}


@router.get("/layouts", responses=READ, summary="A camera's layout versions, newest first")
async def list_layouts(_: Admin, con: Connection, tenant: TenantPath, site: SitePath, device: DevicePath,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Each `{"version", "at", "actor", "source", "spaces"}` (a count); source: `editor`,
    `pklot`, `ultralytics`, `site` (imports) or `api` (a device written with polygons)."""
    return await layouts.versions(con, await _camera(con, tenant, site, device), limit)


@router.get("/layouts/{version}", responses=READ, summary="One layout version, with its polygons")
async def get_version(_: Admin, con: Connection, tenant: TenantPath, site: SitePath, device: DevicePath,
                      version: Annotated[int, PathParam(ge=1, le=2**31 - 1)]) -> dict[str, Any]:
    found = await layouts.version(con, await _camera(con, tenant, site, device), version,
                                  f"camera {device!r}")
    return {"device": device, "site": site, **found}


@router.put("/frame", responses=WRITE, summary="Upload the camera's latest frame (JPEG or PNG)",
            openapi_extra={"requestBody": {"required": True, "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in ("image/jpeg", "image/png")}}})
async def put_frame(who: Admin, con: Connection, request: Request, tenant: TenantPath, site: SitePath,
                    device: DevicePath) -> dict[str, Any]:
    """The body is the image (at most 4 MiB); it replaces the frame before. Audited as
    `device.frame` (size, not the image)."""
    data = await request.body()
    picture = frames.check_frame(data, request.headers.get("content-type"))
    camera = await _camera(con, tenant, site, device)
    at = await frames.put_frame(con, who, tenant, f"{site}/{device}", camera, data, picture)
    return {"device": device, "content_type": picture.content_type, "width": picture.width,
            "height": picture.height, "bytes": len(data), "at": at}


@router.get("/frame", summary="The camera's latest frame", response_class=Response,
            responses={**READ, 200: {"content": {"image/jpeg": {}, "image/png": {}},
                                     "description": "the image; `X-Frame-Width`/`-Height`, `Last-Modified`"}})
async def get_frame(_: Admin, con: Connection, tenant: TenantPath, site: SitePath,
                    device: DevicePath) -> Response:
    row = await frames.get_frame(con, await _camera(con, tenant, site, device), f"camera {device!r}")
    return Response(bytes(row["image"]), media_type=row["content_type"], headers={
        "Cache-Control": "no-store", "X-Frame-Width": str(row["width"]),
        "X-Frame-Height": str(row["height"]),
        "Last-Modified": format_datetime(row["at"].astimezone(UTC), usegmt=True)})
