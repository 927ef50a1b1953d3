"""Operator writes to the registry, each in one transaction with its audit row.

How this works: every function takes the connection, the acting ``Principal``
and the tenant, writes, and appends an ``audit_log`` row (who, what, when,
the new values) in the same transaction, so there is no write without its
audit and no audit of a write that rolled back. Retiring sets ``retired_at``
and removes the row's gateway bindings (so nothing more can be reported
for it); its state and history stay. Unique violations become ``Conflict``
(naming the resource, never the database's text).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from dashboard_api import BadInput, Conflict, NotFound, layouts
from dashboard_api.auth import Principal, hash_secret, new_secret
from dashboard_api.devices import check_device

# Columns an operator may set, per table (the request bodies' fields, validated by pydantic).
SITE_COLS = ("kind", "name", "name_fa", "address", "lat", "lon", "opening_hours", "stale_after_s")
JSON_COLS = {"opening_hours", "attributes"}
# Errors name the resource, never the database's text (which names columns and constraints).
_NOUNS = {"sites": "site", "zones": "zone", "spaces": "space", "gateways": "gateway", "devices": "device"}


# Who writes: a request's token, or a command line's actor string (e.g. ``cli``).
Who = Principal | str


async def audit(con: asyncpg.Connection, who: Who, tenant: str, action: str, target: str,
                detail: Mapping[str, Any] | None = None) -> None:
    actor = who if isinstance(who, str) else who.actor
    await con.execute(
        "INSERT INTO audit_log (actor, tenant, action, target, detail) VALUES ($1, $2, $3, $4, $5::jsonb)",
        actor, tenant, action, target, json.dumps(detail or {}, default=str))


async def tenant_id(con: asyncpg.Connection, tenant: str) -> int:
    found: int | None = await con.fetchval("SELECT id FROM tenants WHERE slug = $1", tenant)
    if found is None:
        raise NotFound(f"no tenant {tenant!r}")
    return found


async def site_id(con: asyncpg.Connection, tenant: str, site: str, *, live: bool = True) -> int:
    found: int | None = await con.fetchval(
        "SELECT si.id FROM sites si JOIN tenants t ON t.id = si.tenant_id WHERE t.slug = $1 AND si.slug = $2"
        + (" AND si.retired_at IS NULL" if live else ""), tenant, site)
    if found is None:
        raise NotFound(f"no site {site!r} of tenant {tenant!r}")
    return found


def _values(values: Mapping[str, Any]) -> list[Any]:
    return [json.dumps(v) if k in JSON_COLS and v is not None else v for k, v in values.items()]


async def _insert(con: asyncpg.Connection, table: str, values: Mapping[str, Any]) -> None:
    cols = ", ".join(values)
    params = ", ".join(f"${i + 1}" for i in range(len(values)))
    noun = _NOUNS[table]
    try:
        await con.execute(f"INSERT INTO {table} ({cols}) VALUES ({params})", *_values(values))
    except asyncpg.UniqueViolationError as exc:
        taken = " (or its DevEUI is another device's)" if table == "devices" else ""
        raise Conflict(f"{noun} {values.get('slug')!r} exists already{taken}") from exc
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError) as exc:
        raise BadInput(f"{noun}: a value is out of range or names a row that does not exist") from exc


async def _update(con: asyncpg.Connection, table: str, row_id: int, values: Mapping[str, Any]) -> None:
    if not values:
        return
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(values))
    noun = _NOUNS[table]
    try:
        await con.execute(f"UPDATE {table} SET {sets} WHERE id = $1", row_id, *_values(values))
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"the new values of this {noun} are another {noun}'s already") from exc
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError,
            asyncpg.NotNullViolationError) as exc:
        raise BadInput(f"{noun}: a value is out of range, missing, or names a row that does not "
                       "exist") from exc


async def _row_id(con: asyncpg.Connection, sql: str, *args: Any, what: str) -> int:
    found: int | None = await con.fetchval(sql, *args)
    if found is None:
        raise NotFound(what)
    return found


# --- sites --------------------------------------------------------------------------------------

async def create_site(con: asyncpg.Connection, who: Principal, tenant: str, slug: str,
                      values: Mapping[str, Any]) -> None:
    async with con.transaction():
        await _insert(con, "sites", {"tenant_id": await tenant_id(con, tenant), "slug": slug, **values})
        await audit(con, who, tenant, "site.create", slug, values)


async def update_site(con: asyncpg.Connection, who: Principal, tenant: str, slug: str,
                      values: Mapping[str, Any]) -> None:
    async with con.transaction():
        await _update(con, "sites", await site_id(con, tenant, slug), values)
        await audit(con, who, tenant, "site.update", slug, values)


async def retire_site(con: asyncpg.Connection, who: Principal, tenant: str, slug: str) -> None:
    async with con.transaction():
        sid = await site_id(con, tenant, slug)
        await con.execute("UPDATE sites SET retired_at = now() WHERE id = $1", sid)
        await con.execute(
            "UPDATE spaces SET retired_at = now() WHERE site_id = $1 AND retired_at IS NULL", sid)
        await con.execute(
            "DELETE FROM gateway_spaces WHERE space_id IN (SELECT id FROM spaces WHERE site_id = $1)", sid)
        await audit(con, who, tenant, "site.retire", slug)


# --- zones and spaces ---------------------------------------------------------------------------

_ZONE_ID = """SELECT id FROM zones WHERE site_id = $1 AND slug = $2 AND retired_at IS NULL"""
_SPACE_ID = """SELECT id FROM spaces WHERE site_id = $1 AND slug = $2 AND retired_at IS NULL"""


async def create_zone(con: asyncpg.Connection, who: Principal, tenant: str, site: str, slug: str,
                      values: Mapping[str, Any]) -> None:
    async with con.transaction():
        await _insert(con, "zones", {"site_id": await site_id(con, tenant, site), "slug": slug, **values})
        await audit(con, who, tenant, "zone.create", f"{site}/{slug}", values)


async def update_zone(con: asyncpg.Connection, who: Principal, tenant: str, site: str, slug: str,
                      values: Mapping[str, Any]) -> None:
    async with con.transaction():
        sid = await site_id(con, tenant, site)
        zid = await _row_id(con, _ZONE_ID, sid, slug, what=f"no zone {slug!r} of site {site!r}")
        await _update(con, "zones", zid, values)
        await audit(con, who, tenant, "zone.update", f"{site}/{slug}", values)


async def retire_zone(con: asyncpg.Connection, who: Principal, tenant: str, site: str, slug: str) -> None:
    """A zone is retired alone: its spaces stay (an operator retires or moves them)."""
    async with con.transaction():
        sid = await site_id(con, tenant, site)
        zid = await _row_id(con, _ZONE_ID, sid, slug, what=f"no zone {slug!r} of site {site!r}")
        await con.execute("UPDATE zones SET retired_at = now() WHERE id = $1", zid)
        await audit(con, who, tenant, "zone.retire", f"{site}/{slug}")


async def _zone_ref(con: asyncpg.Connection, sid: int, values: dict[str, Any]) -> dict[str, Any]:
    if "zone" not in values:
        return values
    zone = values.pop("zone")
    values["zone_id"] = None if zone is None else await _row_id(
        con, _ZONE_ID, sid, zone, what=f"no zone {zone!r}")
    return values


async def create_space(con: asyncpg.Connection, who: Principal, tenant: str, site: str, slug: str,
                       values: Mapping[str, Any]) -> None:
    async with con.transaction():
        sid = await site_id(con, tenant, site)
        row = await _zone_ref(con, sid, dict(values))
        await _insert(con, "spaces", {"site_id": sid, "slug": slug, **row})
        await audit(con, who, tenant, "space.create", f"{site}/{slug}", values)


async def update_space(con: asyncpg.Connection, who: Principal, tenant: str, site: str, slug: str,
                       values: Mapping[str, Any]) -> None:
    async with con.transaction():
        sid = await site_id(con, tenant, site)
        space = await _row_id(con, _SPACE_ID, sid, slug, what=f"no space {slug!r} of site {site!r}")
        await _update(con, "spaces", space, await _zone_ref(con, sid, dict(values)))
        await audit(con, who, tenant, "space.update", f"{site}/{slug}", values)


async def retire_space(con: asyncpg.Connection, who: Principal, tenant: str, site: str, slug: str) -> None:
    async with con.transaction():
        sid = await site_id(con, tenant, site)
        space = await _row_id(con, _SPACE_ID, sid, slug, what=f"no space {slug!r} of site {site!r}")
        await con.execute("UPDATE spaces SET retired_at = now() WHERE id = $1", space)
        await con.execute("DELETE FROM gateway_spaces WHERE space_id = $1", space)
        await audit(con, who, tenant, "space.retire", f"{site}/{slug}")


# --- gateways -----------------------------------------------------------------------------------

_GATEWAY_ID = """SELECT g.id FROM gateways g JOIN tenants t ON t.id = g.tenant_id
WHERE t.slug = $1 AND g.slug = $2 AND g.retired_at IS NULL"""


async def gateway_id(con: asyncpg.Connection, tenant: str, slug: str) -> int:
    """The row id of the tenant's live gateway ``slug``; ``NotFound`` when there is none."""
    return await _row_id(con, _GATEWAY_ID, tenant, slug, what=f"no gateway {slug!r} of tenant {tenant!r}")


async def _space_ids(con: asyncpg.Connection, tenant: str, sites: Sequence[str],
                     spaces: Sequence[str]) -> list[int]:
    """Row ids of every space of ``sites`` and of each ``site/space`` in ``spaces``."""
    ids: list[int] = []
    for site in sites:
        sid = await site_id(con, tenant, site)
        ids += [r["id"] for r in await con.fetch(
            "SELECT id FROM spaces WHERE site_id = $1 AND retired_at IS NULL", sid)]
    for ref in spaces:
        site, _, space = ref.partition("/")
        ids.append(await _row_id(con, _SPACE_ID, await site_id(con, tenant, site), space,
                                 what=f"no space {ref!r}"))
    return sorted(set(ids))


async def _bind(con: asyncpg.Connection, gateway: int, space_ids: Sequence[int]) -> None:
    await con.execute("DELETE FROM gateway_spaces WHERE gateway_id = $1", gateway)
    await con.execute("INSERT INTO gateway_spaces SELECT $1, unnest($2::int[])", gateway, list(space_ids))


async def create_gateway(con: asyncpg.Connection, who: Principal, tenant: str, slug: str, name: str | None,
                         sites: Sequence[str], spaces: Sequence[str]) -> str:
    """Create a gateway bound to the spaces; returns its MQTT secret (stored hashed only)."""
    secret = new_secret()
    async with con.transaction():
        await _insert(con, "gateways", {"tenant_id": await tenant_id(con, tenant), "slug": slug,
                                        "name": name, "secret_hash": hash_secret(secret)})
        gid = await _row_id(con, _GATEWAY_ID, tenant, slug, what=slug)
        await _bind(con, gid, await _space_ids(con, tenant, sites, spaces))
        await audit(con, who, tenant, "gateway.create", slug,
                    {"name": name, "sites": list(sites), "spaces": list(spaces)})
    return secret


async def update_gateway(con: asyncpg.Connection, who: Principal, tenant: str, slug: str,
                         values: Mapping[str, Any]) -> None:
    async with con.transaction():
        gid = await _row_id(con, _GATEWAY_ID, tenant, slug, what=f"no gateway {slug!r}")
        if "name" in values:
            await _update(con, "gateways", gid, {"name": values["name"]})
        if values.get("sites") is not None or values.get("spaces") is not None:
            ids = await _space_ids(con, tenant, values.get("sites") or [], values.get("spaces") or [])
            await _bind(con, gid, ids)
        await audit(con, who, tenant, "gateway.update", slug, values)


async def rotate_credentials(con: asyncpg.Connection, who: Who, tenant: str, slug: str) -> str:
    """New MQTT credentials for a gateway; the old secret stops working at the broker's next sync."""
    secret = new_secret()
    async with con.transaction():
        gid = await _row_id(con, _GATEWAY_ID, tenant, slug, what=f"no gateway {slug!r}")
        await con.execute("UPDATE gateways SET secret_hash = $2 WHERE id = $1", gid, hash_secret(secret))
        await audit(con, who, tenant, "gateway.credentials", slug)
    return secret


async def revoke_credentials(con: asyncpg.Connection, who: Who, tenant: str, slug: str) -> None:
    """The gateway stays provisioned but may no longer connect (until credentials are issued again)."""
    async with con.transaction():
        gid = await _row_id(con, _GATEWAY_ID, tenant, slug, what=f"no gateway {slug!r}")
        await con.execute("UPDATE gateways SET secret_hash = NULL WHERE id = $1", gid)
        await audit(con, who, tenant, "gateway.credentials.revoke", slug)


async def retire_gateway(con: asyncpg.Connection, who: Principal, tenant: str, slug: str) -> None:
    async with con.transaction():
        gid = await _row_id(con, _GATEWAY_ID, tenant, slug, what=f"no gateway {slug!r}")
        await con.execute("UPDATE gateways SET retired_at = now(), secret_hash = NULL WHERE id = $1", gid)
        await con.execute("DELETE FROM gateway_spaces WHERE gateway_id = $1", gid)
        await audit(con, who, tenant, "gateway.retire", slug)


# --- devices ------------------------------------------------------------------------------------

_DEVICE_ID = """SELECT id FROM devices WHERE site_id = $1 AND slug = $2 AND retired_at IS NULL"""


async def _watch(con: asyncpg.Connection, sid: int, device: int,
                 spaces: Mapping[str, list[list[float]] | None]) -> None:
    ids = [await _row_id(con, _SPACE_ID, sid, s, what=f"no space {s!r}") for s in spaces]
    polygons = [json.dumps(p) if p is not None else None for p in spaces.values()]
    await con.execute("DELETE FROM device_spaces WHERE device_id = $1", device)
    await con.execute(
        "INSERT INTO device_spaces SELECT $1, s, p::jsonb FROM unnest($2::int[], $3::text[]) AS u(s, p)",
        device, ids, polygons)


def _watched(spaces: Sequence[str] | Mapping[str, list[list[float]]] | None) -> dict[str, Any] | None:
    if spaces is None:
        return None
    return dict(spaces) if isinstance(spaces, Mapping) else dict.fromkeys(spaces)


async def _gateway_ref(con: asyncpg.Connection, tenant: str, values: dict[str, Any]) -> dict[str, Any]:
    if "gateway" in values:
        gw = values.pop("gateway")
        values["gateway_id"] = None if gw is None else await _row_id(
            con, _GATEWAY_ID, tenant, gw, what=f"no gateway {gw!r}")
    return values


async def create_device(con: asyncpg.Connection, who: Principal, tenant: str, site: str, slug: str,
                        values: Mapping[str, Any]) -> None:
    async with con.transaction():
        sid = await site_id(con, tenant, site)
        await check_device(con, site_id=sid, slug=slug, device_id=None, values=values)
        row = await _gateway_ref(con, tenant, dict(values))
        watched = _watched(row.pop("spaces", None)) or {}
        await _insert(con, "devices", {"site_id": sid, "slug": slug, **row})
        device = await _row_id(con, _DEVICE_ID, sid, slug, what=slug)
        await _watch(con, sid, device, watched)
        version = await layouts.record(con, device, who.actor, "api", watched)
        await audit(con, who, tenant, "device.create", f"{site}/{slug}", _with_version(values, version))


async def update_device(con: asyncpg.Connection, who: Principal, tenant: str, site: str, slug: str,
                        values: Mapping[str, Any], *, layout_source: str = "api") -> int | None:
    """Update a device; a camera's new polygons are also a new layout version (returned;
    ``layout_source`` says what they came from: ``editor``, ``pklot``, …)."""
    async with con.transaction():
        sid = await site_id(con, tenant, site)
        device = await _row_id(con, _DEVICE_ID, sid, slug, what=f"no device {slug!r} of site {site!r}")
        await check_device(con, site_id=sid, slug=slug, device_id=device, values=values)
        row = await _gateway_ref(con, tenant, dict(values))
        watched = _watched(row.pop("spaces", None))
        await _update(con, "devices", device, row)
        version = None
        if watched is not None:
            await _watch(con, sid, device, watched)
            version = await layouts.record(con, device, who.actor, layout_source, watched)
        await audit(con, who, tenant, "device.update", f"{site}/{slug}", _with_version(values, version))
        return version


def _with_version(values: Mapping[str, Any], version: int | None) -> Mapping[str, Any]:
    return values if version is None else {**values, "layout_version": version}


async def retire_device(con: asyncpg.Connection, who: Principal, tenant: str, site: str, slug: str) -> None:
    async with con.transaction():
        sid = await site_id(con, tenant, site)
        device = await _row_id(con, _DEVICE_ID, sid, slug, what=f"no device {slug!r} of site {site!r}")
        await con.execute("UPDATE devices SET retired_at = now(), dev_eui = NULL WHERE id = $1", device)
        await audit(con, who, tenant, "device.retire", f"{site}/{slug}")


async def audit_rows(con: asyncpg.Connection, tenant: str, limit: int) -> list[dict[str, Any]]:
    rows = await con.fetch(
        "SELECT id, at, actor, action, target, detail FROM audit_log WHERE tenant = $1 "
        "ORDER BY id DESC LIMIT $2", tenant, limit)
    return [dict(r) | {"detail": json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]}
            for r in rows]
