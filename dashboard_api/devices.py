"""Devices through the operators' API: the LoRaWAN rules a write must keep, and the reads.

How this works: a device write (create, update, a camera's polygons) first
builds the row the request would leave — the stored row with the request's
values over it, and the spaces it would watch — and applies the site file's
own rules to it (``occupancy.sitefile.device_problems``: a lorawan device has
a DevEUI, one space, and a known model or an occupied path, never both), so
the API and ``parkbazaar provision`` refuse the same things with the same
words. Then it checks what only the database knows: a DevEUI another device
holds, or a space another lorawan device watches, is a ``Conflict`` (409)
naming that device (or only "another tenant's", across tenants).

``gateway_sensors`` is the gateway config's ``chirpstack.sensors`` list for one
gateway: its bound spaces' live lorawan devices, one entry each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from dashboard_api import BadInput, Conflict, NotFound
from occupancy.sitefile import device_problems

_CURRENT = """SELECT kind, dev_eui, model, occupied_path,
       ARRAY(SELECT s.slug FROM device_spaces ds JOIN spaces s ON s.id = ds.space_id
             WHERE ds.device_id = d.id ORDER BY s.slug) AS spaces
FROM devices d WHERE d.id = $1"""

_EMPTY: dict[str, Any] = {"kind": None, "dev_eui": None, "model": None, "occupied_path": None, "spaces": []}


async def check_device(con: asyncpg.Connection, *, site_id: int, slug: str, device_id: int | None,
                       values: Mapping[str, Any]) -> None:
    """``BadInput`` or ``Conflict`` unless the device row ``values`` would leave is usable.

    ``device_id`` is None for a new device; ``values`` are the request's (``spaces`` a
    list of ids or a mapping id → polygon)."""
    row = dict(await con.fetchrow(_CURRENT, device_id)) if device_id is not None else dict(_EMPTY)
    row |= {k: v for k, v in values.items() if k in row}
    problems = device_problems(row["kind"], row["dev_eui"], row["model"], row["occupied_path"],
                               row["spaces"])
    if problems:
        raise BadInput("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg, _ in problems),
                       loc=("body", str(problems[0][0][0])))
    if row["dev_eui"] is not None:
        await _dev_eui_free(con, site_id, slug, device_id, row["dev_eui"])
    if row["kind"] == "lorawan":
        await _space_free(con, site_id, slug, device_id, next(iter(row["spaces"])))


async def _dev_eui_free(con: asyncpg.Connection, site_id: int, slug: str, device_id: int | None,
                        dev_eui: str) -> None:
    holder = await con.fetchrow(
        """SELECT si.slug AS site, d.slug, si.tenant_id = (SELECT tenant_id FROM sites WHERE id = $3)
                  AS ours
           FROM devices d JOIN sites si ON si.id = d.site_id
           WHERE d.dev_eui = $1 AND d.id IS DISTINCT FROM $2""",
        dev_eui.lower(), device_id, site_id)
    if holder is not None:
        who = f"device {holder['site']}/{holder['slug']}" if holder["ours"] else "a device of another tenant"
        raise Conflict(f"device {slug!r}: DevEUI {dev_eui.lower()} is held by {who} already "
                       "(retire that device, or clear its dev_eui, first)")


async def _space_free(con: asyncpg.Connection, site_id: int, slug: str, device_id: int | None,
                      space: str) -> None:
    other = await con.fetchval(
        """SELECT d.slug FROM device_spaces ds JOIN devices d ON d.id = ds.device_id
           JOIN spaces s ON s.id = ds.space_id
           WHERE s.site_id = $1 AND s.slug = $2 AND d.kind = 'lorawan' AND d.retired_at IS NULL
             AND d.id IS DISTINCT FROM $3 LIMIT 1""",
        site_id, space, device_id)
    if other is not None:
        raise Conflict(f"device {slug!r}: space {space!r} is watched by lorawan device {other!r} already")


_DEVICES = """SELECT d.slug AS id, d.kind, d.dev_eui, d.model, d.occupied_path, g.slug AS gateway,
       ARRAY(SELECT s.slug FROM device_spaces ds JOIN spaces s ON s.id = ds.space_id
             WHERE ds.device_id = d.id ORDER BY s.slug) AS spaces
FROM devices d LEFT JOIN gateways g ON g.id = d.gateway_id
WHERE d.site_id = $1 AND d.retired_at IS NULL AND ($2::text IS NULL OR d.slug = $2)
ORDER BY d.slug"""


async def device_rows(con: asyncpg.Connection, *, site_id: int, device: str | None = None
                      ) -> list[dict[str, Any]]:
    """The site's live devices (or the one named): id, kind, DevEUI, how its frames are
    read, gateway and spaces. ``NotFound`` when a named device is not there."""
    rows = [dict(r) for r in await con.fetch(_DEVICES, site_id, device)]
    if device is not None and not rows:
        raise NotFound(f"no device {device!r}")
    return rows


_SENSORS = """SELECT DISTINCT d.dev_eui, d.model, d.occupied_path, si.slug || '/' || s.slug AS space
FROM gateway_spaces gs
JOIN spaces s ON s.id = gs.space_id
JOIN sites si ON si.id = s.site_id
JOIN device_spaces ds ON ds.space_id = s.id
JOIN devices d ON d.id = ds.device_id
WHERE gs.gateway_id = $1 AND d.kind = 'lorawan' AND d.retired_at IS NULL
  AND d.dev_eui IS NOT NULL AND s.retired_at IS NULL
ORDER BY d.dev_eui"""


async def gateway_sensors(con: asyncpg.Connection, *, gateway_id: int) -> list[dict[str, str]]:
    """``[{"dev_eui", "model" | "occupied_path", "space": "site/space"}]`` for every live
    lorawan device watching a space bound to the gateway (its row id). A device that names
    neither (written before migration 011) is listed without either, for the gateway to
    refuse by name rather than for it to vanish here."""
    return [_sensor(r) for r in await con.fetch(_SENSORS, gateway_id)]


def _sensor(row: asyncpg.Record) -> dict[str, str]:
    out = {"dev_eui": row["dev_eui"]}
    if row["model"] is not None:
        out["model"] = row["model"]
    elif row["occupied_path"] is not None:
        out["occupied_path"] = row["occupied_path"]
    return out | {"space": row["space"]}
