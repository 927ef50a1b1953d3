"""Load a validated site file into the registry tables, idempotently.

How this works: everything happens in one transaction. Rows are upserted by
their slugs (tenant; site within tenant; zone, space and device within site;
gateway within tenant). An upsert only writes when a value differs
(``ON CONFLICT … DO UPDATE … WHERE … IS DISTINCT FROM …``), so ``RETURNING``
yields exactly the rows created or updated, and a second run of the same file
writes nothing and reports zero.

The file is the truth for bindings: a tenant gateway's bindings that the file
does not list are removed (a gateway that left the file loses all of them, so
it can report nothing). Spaces, zones, sites and gateways are never deleted:
the ones the file no longer names are listed in the report for an operator to
act on. Rows whose state and history other tables hold are not dropped behind
anyone's back.

The tenant's holidays are the file's too: dates it no longer lists are removed
(they hold nothing but a name).

Devices carry their LoRaWAN binding (``dev_eui``, ``model`` or
``occupied_path``), checked by the site file itself. A DevEUI that another
device holds — one the file names with another DevEUI or not at all, or a
device of another tenant — is a ``ProvisionConflict`` before any device is
written: the file never takes a sensor from another device silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import asyncpg

from dashboard_api import ProvisionConflict, ProvisionError
from occupancy.ids import IdError, SiteId, SpaceId, SpaceRef
from occupancy.sitefile import Device, Site, SiteFile

KINDS = ("tenants", "holidays", "sites", "zones", "spaces", "gateways", "bindings", "devices",
         "device_spaces")


@dataclass(frozen=True, slots=True)
class Counts:
    """Rows of one table that a run created, updated or removed."""

    created: int = 0
    updated: int = 0
    removed: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.created + other.created,
            self.updated + other.updated,
            self.removed + other.removed,
        )


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    """What a run changed, per table, and what the file no longer names."""

    tenant: str
    counts: Mapping[str, Counts]
    orphan_spaces: tuple[str, ...] = ()
    orphan_gateways: tuple[str, ...] = ()

    @property
    def created(self) -> int:
        return sum(c.created for c in self.counts.values())

    @property
    def changed(self) -> int:
        """Rows created, updated or removed: 0 on a rerun of the same file."""
        return sum(c.created + c.updated + c.removed for c in self.counts.values())

    def __str__(self) -> str:
        return self.lines()[0]

    def lines(self) -> list[str]:
        """A human summary, one line per table, then the orphans."""
        out = [f"tenant {self.tenant}: {self.created} new, {self.changed} changed rows"]
        for kind in KINDS:
            c = self.counts.get(kind, Counts())
            out.append(f"  {kind:<14} {c.created:>5} new {c.updated:>5} updated {c.removed:>5} removed")
        if self.orphan_spaces:
            out.append(f"  spaces not in the file (kept): {', '.join(self.orphan_spaces)}")
        if self.orphan_gateways:
            out.append(f"  gateways not in the file (bindings removed): {', '.join(self.orphan_gateways)}")
        return out


@dataclass(slots=True)
class _Tally:
    """Counts collected during one run (mutable, private to ``provision``)."""

    counts: dict[str, Counts] = field(default_factory=dict)

    def add(self, kind: str, counts: Counts) -> None:
        self.counts[kind] = self.counts.get(kind, Counts()) + counts

    def outcome(self, kind: str, outcome: str) -> None:
        self.add(kind, Counts(created=outcome == "created", updated=outcome == "updated"))


async def provision(con: asyncpg.Connection, site_file: SiteFile) -> ProvisionReport:
    """Load ``site_file`` in one transaction; raises ``ProvisionError`` and writes nothing on failure."""
    if not await con.fetchval("SELECT to_regclass('gateway_spaces') IS NOT NULL"):
        raise ProvisionError("database is not migrated: run `parkbazaar migrate` first")
    try:
        async with con.transaction():
            return await _provision(con, site_file)
    except asyncpg.PostgresError as exc:
        raise ProvisionError(f"cannot provision tenant {site_file.tenant.id}: {exc}") from exc


async def _provision(con: asyncpg.Connection, sf: SiteFile) -> ProvisionReport:
    tally = _Tally()
    tenant_id = await _upsert_tenant(con, sf, tally)
    await _sync_holidays(con, tenant_id, sf, tally)
    spaces: dict[SpaceRef, int] = {}
    site_ids: dict[str, int] = {}
    for site in sf.sites:
        site_ids[site.id] = await _upsert_site(con, tenant_id, site, tally)
        zones = await _upsert_zones(con, site_ids[site.id], site, tally)
        spaces |= await _upsert_spaces(con, site_ids[site.id], site, zones, tally)
    gateways = await _upsert_gateways(con, tenant_id, sf, tally)
    await _sync_bindings(con, tenant_id, _bindings(sf, gateways, spaces), tally)
    await _check_dev_euis(con, tenant_id, sf)
    for site in sf.sites:
        await _sync_devices(con, sf, site, site_ids[site.id], gateways, spaces, tally)
    return ProvisionReport(
        tenant=sf.tenant.id,
        counts=MappingProxyType(dict(tally.counts)),
        orphan_spaces=await _orphan_spaces(con, tenant_id, spaces),
        orphan_gateways=await _orphan_gateways(con, tenant_id, gateways),
    )


# One row: upsert, then say whether it was created, updated or left alone.
def _one_row_sql(table: str, key: str, cols: Sequence[str]) -> str:
    names = ", ".join(cols)
    params = ", ".join(f"${i + 1}" for i in range(len(cols)))
    data = [c for c in cols if c not in key.split(", ")]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in data)
    old = ", ".join(f"{table}.{c}" for c in data)
    new = ", ".join(f"EXCLUDED.{c}" for c in data)
    where = " AND ".join(f"{c} = ${cols.index(c) + 1}" for c in key.split(", "))
    return f"""
        WITH up AS (
            INSERT INTO {table} ({names}) VALUES ({params})
            ON CONFLICT ({key}) DO UPDATE SET {sets}
            WHERE ROW({old}) IS DISTINCT FROM ROW({new})
            RETURNING id, xmax = 0 AS inserted)
        SELECT id, CASE WHEN inserted THEN 'created' ELSE 'updated' END AS outcome FROM up
        UNION ALL
        SELECT id, 'unchanged' FROM {table} WHERE {where} AND NOT EXISTS (SELECT FROM up)"""


_TENANT_SQL = _one_row_sql("tenants", "slug", ("slug", "name", "name_fa", "timezone"))
_SITE_SQL = _one_row_sql(
    "sites",
    "tenant_id, slug",
    ("tenant_id", "slug", "kind", "name", "name_fa", "address", "lat", "lon",
     "opening_hours", "stale_after_s"),
)
_DEVICE_SQL = _one_row_sql("devices", "site_id, slug",
                           ("site_id", "slug", "gateway_id", "kind", "dev_eui", "model", "occupied_path"))


async def _upsert_one(con: asyncpg.Connection, sql: str, kind: str, tally: _Tally, *args: Any) -> int:
    row = await con.fetchrow(sql, *args)
    tally.outcome(kind, row["outcome"])
    return int(row["id"])


async def _upsert_tenant(con: asyncpg.Connection, sf: SiteFile, tally: _Tally) -> int:
    t = sf.tenant
    return await _upsert_one(con, _TENANT_SQL, "tenants", tally, t.id, t.name, t.name_fa, t.timezone)


async def _sync_holidays(con: asyncpg.Connection, tenant_id: int, sf: SiteFile, tally: _Tally) -> None:
    """The tenant's holidays become the file's: listed dates upserted, the others removed."""
    days = sf.tenant.holidays
    removed = await con.fetch(
        "DELETE FROM tenant_holidays WHERE tenant_id = $1 AND NOT day = ANY($2::date[]) RETURNING 1",
        tenant_id, [h.date for h in days])
    rows = await con.fetch(
        """INSERT INTO tenant_holidays (tenant_id, day, name, name_fa)
           SELECT $1, * FROM unnest($2::date[], $3::text[], $4::text[])
           ON CONFLICT (tenant_id, day) DO UPDATE SET name = EXCLUDED.name, name_fa = EXCLUDED.name_fa
           WHERE (tenant_holidays.name, tenant_holidays.name_fa)
                 IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.name_fa)
           RETURNING xmax = 0 AS inserted""",
        tenant_id, [h.date for h in days], [h.name for h in days], [h.name_fa for h in days])
    tally.add("holidays", _counted(rows) + Counts(removed=len(removed)))


async def _upsert_site(con: asyncpg.Connection, tenant_id: int, s: Site, tally: _Tally) -> int:
    hours = json.dumps(s.opening_hours.model_dump()) if s.opening_hours else None
    return await _upsert_one(
        con, _SITE_SQL, "sites", tally,
        tenant_id, s.id, s.kind, s.name, s.name_fa, s.address, s.lat, s.lon, hours, s.stale_after_s,
    )


def _counted(rows: Iterable[asyncpg.Record]) -> Counts:
    inserted = [bool(r["inserted"]) for r in rows]
    return Counts(created=sum(inserted), updated=len(inserted) - sum(inserted))


async def _upsert_zones(con: asyncpg.Connection, site_id: int, site: Site, tally: _Tally) -> dict[str, int]:
    rows = await con.fetch(
        """INSERT INTO zones (site_id, slug, name, name_fa)
           SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])
           ON CONFLICT (site_id, slug) DO UPDATE SET name = EXCLUDED.name, name_fa = EXCLUDED.name_fa
           WHERE (zones.name, zones.name_fa) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.name_fa)
           RETURNING xmax = 0 AS inserted""",
        site_id, [z.id for z in site.zones], [z.name for z in site.zones],
        [z.name_fa for z in site.zones],
    )
    tally.add("zones", _counted(rows))
    found = await con.fetch("SELECT slug, id FROM zones WHERE site_id = $1", site_id)
    return {r["slug"]: r["id"] for r in found}


async def _upsert_spaces(
    con: asyncpg.Connection, site_id: int, site: Site, zones: Mapping[str, int], tally: _Tally
) -> dict[SpaceRef, int]:
    slugs, zone_ids, attrs = [], [], []
    for zone in site.zones:
        for space in zone.space_ids():
            slugs.append(str(space))
            zone_ids.append(zones[zone.id])
            attrs.append(json.dumps(zone.attributes.get(space, {})))
    rows = await con.fetch(
        """INSERT INTO spaces (site_id, slug, zone_id, attributes)
           SELECT $1, slug, zone_id, attributes::jsonb
           FROM unnest($2::text[], $3::int[], $4::text[]) AS r(slug, zone_id, attributes)
           ON CONFLICT (site_id, slug) DO UPDATE
               SET zone_id = EXCLUDED.zone_id, attributes = EXCLUDED.attributes
           WHERE (spaces.zone_id, spaces.attributes)
                 IS DISTINCT FROM (EXCLUDED.zone_id, EXCLUDED.attributes)
           RETURNING xmax = 0 AS inserted""",
        site_id, slugs, zone_ids, attrs,
    )
    tally.add("spaces", _counted(rows))
    found = await con.fetch(
        "SELECT slug, id FROM spaces WHERE site_id = $1 AND slug = ANY($2::text[])", site_id, slugs
    )
    return {SpaceRef(SiteId(site.id), SpaceId(r["slug"])): r["id"] for r in found}


async def _upsert_gateways(
    con: asyncpg.Connection, tenant_id: int, sf: SiteFile, tally: _Tally
) -> dict[str, int]:
    rows = await con.fetch(
        """INSERT INTO gateways (tenant_id, slug, name)
           SELECT $1, * FROM unnest($2::text[], $3::text[])
           ON CONFLICT (tenant_id, slug) DO UPDATE SET name = EXCLUDED.name
           WHERE gateways.name IS DISTINCT FROM EXCLUDED.name
           RETURNING xmax = 0 AS inserted""",
        tenant_id, [g.id for g in sf.gateways], [g.name for g in sf.gateways],
    )
    tally.add("gateways", _counted(rows))
    found = await con.fetch("SELECT slug, id FROM gateways WHERE tenant_id = $1", tenant_id)
    wanted = {g.id for g in sf.gateways}
    return {r["slug"]: r["id"] for r in found if r["slug"] in wanted}


def _bindings(
    sf: SiteFile, gateways: Mapping[str, int], spaces: Mapping[SpaceRef, int]
) -> list[tuple[int, int]]:
    """(gateway row id, space row id) for every binding the file declares."""
    return [(gateways[g.id], spaces[ref]) for g in sf.gateways for ref in sf.bound_spaces(g.id)]


async def _sync_bindings(
    con: asyncpg.Connection, tenant_id: int, pairs: Sequence[tuple[int, int]], tally: _Tally
) -> None:
    gw_ids, space_ids = [p[0] for p in pairs], [p[1] for p in pairs]
    removed = await con.fetch(
        """DELETE FROM gateway_spaces gs USING gateways g
           WHERE gs.gateway_id = g.id AND g.tenant_id = $1
             AND (gs.gateway_id, gs.space_id) NOT IN
                 (SELECT * FROM unnest($2::int[], $3::int[]))
           RETURNING 1""",
        tenant_id, gw_ids, space_ids,
    )
    created = await con.fetch(
        """INSERT INTO gateway_spaces (gateway_id, space_id)
           SELECT * FROM unnest($1::int[], $2::int[])
           ON CONFLICT DO NOTHING RETURNING 1""",
        gw_ids, space_ids,
    )
    tally.add("bindings", Counts(created=len(created), removed=len(removed)))


def device_spaces(site: Site, device: Device) -> list[tuple[SpaceRef, list[list[float]] | None]]:
    """The spaces a device watches, with the camera polygon of each (or None).

    A space is named by its id within the device's site, or as ``site/space``.
    """
    items: list[tuple[str, list[list[float]] | None]] = (
        list(device.spaces.items()) if isinstance(device.spaces, dict)
        else [(s, None) for s in device.spaces]
    )
    try:
        return [(_space_ref(site, name), polygon) for name, polygon in items]
    except IdError as exc:
        raise ProvisionError(f"site {site.id}: device {device.id}: {exc}") from exc


def _space_ref(site: Site, name: str) -> SpaceRef:
    return SpaceRef.parse(name) if "/" in name else SpaceRef(SiteId(site.id), SpaceId(name))


def _device_gateway(sf: SiteFile, site: Site, watched: Sequence[SpaceRef]) -> str | None:
    """The gateway bound to the device's first space, else one bound to its site."""
    for gw in sf.gateways:
        if watched and watched[0] in sf.bound_spaces(gw.id):
            return gw.id
    return next((gw.id for gw in sf.gateways if site.id in gw.sites), None)


async def _check_dev_euis(con: asyncpg.Connection, tenant_id: int, sf: SiteFile) -> None:
    """``ProvisionConflict`` when a DevEUI of the file is held by a device that is not the
    file's device with it: the file does not take a sensor from another device silently."""
    wanted = {d.dev_eui.lower(): (s.id, d.id) for s in sf.sites for d in s.devices if d.dev_eui}
    rows = await con.fetch(
        """SELECT d.dev_eui, si.slug AS site, d.slug, si.tenant_id = $1 AS ours
           FROM devices d JOIN sites si ON si.id = d.site_id WHERE d.dev_eui = ANY($2::text[])
           ORDER BY d.dev_eui""",
        tenant_id, list(wanted))
    taken = [
        f"DevEUI {r['dev_eui']} is held by device {r['site']}/{r['slug']} already (retire that "
        "device first, or keep the DevEUI on it in the file)" if r["ours"]
        else f"DevEUI {r['dev_eui']} is held by a device of another tenant"
        for r in rows if not r["ours"] or (r["site"], r["slug"]) != wanted[r["dev_eui"]]
    ]
    if taken:
        raise ProvisionConflict(f"cannot provision tenant {sf.tenant.id}: {'; '.join(taken)}")


async def _sync_devices(
    con: asyncpg.Connection, sf: SiteFile, site: Site, site_id: int,
    gateways: Mapping[str, int], spaces: Mapping[SpaceRef, int], tally: _Tally,
) -> None:
    for device in site.devices:
        watched = device_spaces(site, device)
        unknown = [str(ref) for ref, _ in watched if ref not in spaces]
        if unknown:
            raise ProvisionError(f"site {site.id}: device {device.id}: unknown spaces {unknown}")
        gw = _device_gateway(sf, site, [ref for ref, _ in watched])
        device_id = await _upsert_one(
            con, _DEVICE_SQL, "devices", tally,
            site_id, device.id, gateways.get(gw) if gw else None, device.kind,
            device.dev_eui.lower() if device.dev_eui else None, device.model, device.occupied_path,
        )
        await _sync_device_spaces(con, device_id, [(spaces[r], p) for r, p in watched], tally)


async def _sync_device_spaces(
    con: asyncpg.Connection, device_id: int,
    watched: Sequence[tuple[int, list[list[float]] | None]], tally: _Tally,
) -> None:
    ids = [w[0] for w in watched]
    polygons = [json.dumps(w[1]) if w[1] is not None else None for w in watched]
    removed = await con.fetch(
        "DELETE FROM device_spaces WHERE device_id = $1 AND NOT space_id = ANY($2::int[]) RETURNING 1",
        device_id, ids,
    )
    rows = await con.fetch(
        """INSERT INTO device_spaces (device_id, space_id, polygon)
           SELECT $1, space_id, polygon::jsonb FROM unnest($2::int[], $3::text[]) AS r(space_id, polygon)
           ON CONFLICT (device_id, space_id) DO UPDATE SET polygon = EXCLUDED.polygon
           WHERE device_spaces.polygon IS DISTINCT FROM EXCLUDED.polygon
           RETURNING xmax = 0 AS inserted""",
        device_id, ids, polygons,
    )
    tally.add("device_spaces", _counted(rows) + Counts(removed=len(removed)))


async def _orphan_spaces(
    con: asyncpg.Connection, tenant_id: int, spaces: Mapping[SpaceRef, int]
) -> tuple[str, ...]:
    rows = await con.fetch(
        """SELECT si.slug || '/' || sp.slug AS ref FROM spaces sp JOIN sites si ON si.id = sp.site_id
           WHERE si.tenant_id = $1 AND NOT sp.id = ANY($2::int[]) ORDER BY 1""",
        tenant_id, list(spaces.values()),
    )
    return tuple(r["ref"] for r in rows)


async def _orphan_gateways(
    con: asyncpg.Connection, tenant_id: int, gateways: Mapping[str, int]
) -> tuple[str, ...]:
    rows = await con.fetch(
        "SELECT slug FROM gateways WHERE tenant_id = $1 AND NOT id = ANY($2::int[]) ORDER BY 1",
        tenant_id, list(gateways.values()),
    )
    return tuple(r["slug"] for r in rows)
