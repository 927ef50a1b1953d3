"""The history of a camera's layout: every write of its polygons, numbered.

How this works: the current polygons live in ``device_spaces`` (what the
gateway config, the site file and every reader use). Each write of a camera's
polygons through the operators' API — the layout editor's save, an import of a
PKLot, Ultralytics or site file, a device PATCH with polygons — also appends a
``device_layouts`` row in the same transaction (``record``, called by
``registry.create_device``/``update_device``): version ``n + 1`` of that
device, who, when, from what, and the whole ``space → polygon`` mapping. The
device row is locked first, so two saves at once get versions 5 and 6, never
two 5s. ``current`` reads ``device_spaces`` (the truth) with the latest
version number; a camera set up before migration 013, or by a site file,
has polygons but no version yet (``version: null``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from dashboard_api import BadInput, NotFound

Polygons = Mapping[str, list[list[float]] | None]


def polygons_of(spaces: Polygons) -> dict[str, list[list[float]]] | None:
    """The polygons of a write's ``space → polygon`` mapping; None when it has none (a
    sensor's spaces): only cameras have layouts (pure)."""
    found = {k: v for k, v in spaces.items() if v is not None}
    return found or None


async def latest(con: asyncpg.Connection, device_id: int, *, lock: bool = False) -> int | None:
    """The device's latest layout version (None: none yet); ``lock``: hold the device
    row until the transaction ends, so no other save numbers its version meanwhile."""
    if lock:
        await con.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", device_id)
    found: int | None = await con.fetchval(
        "SELECT max(version) FROM device_layouts WHERE device_id = $1", device_id)
    return found


async def record(con: asyncpg.Connection, device_id: int, actor: str, source: str,
                 spaces: Polygons) -> int | None:
    """Append the next version of the device's layout (inside the caller's transaction);
    its number, or None when ``spaces`` holds no polygon."""
    polygons = polygons_of(spaces)
    if polygons is None:
        return None
    version = (await latest(con, device_id, lock=True) or 0) + 1
    await con.execute(
        """INSERT INTO device_layouts (device_id, version, actor, source, spaces)
           VALUES ($1, $2, $3, $4, $5::jsonb)""",
        device_id, version, actor, source, json.dumps(polygons))
    return version


_CURRENT = """SELECT s.slug, ds.polygon FROM device_spaces ds JOIN spaces s ON s.id = ds.space_id
WHERE ds.device_id = $1 AND ds.polygon IS NOT NULL ORDER BY s.slug"""


async def current(con: asyncpg.Connection, device_id: int) -> dict[str, Any]:
    """``{"version": n | None, "spaces": {space: polygon}}``: the polygons in force."""
    rows = await con.fetch(_CURRENT, device_id)
    return {"version": await latest(con, device_id),
            "spaces": {r["slug"]: _json(r["polygon"]) for r in rows}}


async def versions(con: asyncpg.Connection, device_id: int, limit: int) -> list[dict[str, Any]]:
    """The device's layout versions, newest first: version, at, actor, source, spaces (a count)."""
    rows = await con.fetch(
        """SELECT version, at, actor, source, (SELECT count(*) FROM jsonb_object_keys(spaces)) AS spaces
           FROM device_layouts WHERE device_id = $1 ORDER BY version DESC LIMIT $2""", device_id, limit)
    return [dict(r) for r in rows]


async def version(con: asyncpg.Connection, device_id: int, number: int, what: str) -> dict[str, Any]:
    """One version with its polygons; ``NotFound`` naming ``what`` (the device) if it has none."""
    row = await con.fetchrow(
        "SELECT version, at, actor, source, spaces FROM device_layouts WHERE device_id = $1 AND version = $2",
        device_id, number)
    if row is None:
        raise NotFound(f"no layout version {number} of {what}")
    return dict(row) | {"spaces": _json(row["spaces"])}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def camera_id(con: asyncpg.Connection, site_id: int, site: str, slug: str) -> int:
    """The row id of the site's live camera ``slug``: ``NotFound`` if there is no such
    device, ``BadInput`` if it is not a camera (only cameras have layouts and frames)."""
    row = await con.fetchrow(
        "SELECT id, kind FROM devices WHERE site_id = $1 AND slug = $2 AND retired_at IS NULL", site_id, slug)
    if row is None:
        raise NotFound(f"no device {slug!r} of site {site!r}")
    if row["kind"] != "camera":
        raise BadInput(f"device {slug!r} is a {row['kind']}, not a camera: "
                       "only cameras have layouts and frames")
    found: int = row["id"]
    return found
