"""Who may report what: gateways and the spaces bound to them, by database id.

``Registry`` is a plain value (built by ``load_registry`` from the database)
that the pure planner consults; ingest reloads it when a message names a
gateway or space it does not know yet (newly provisioned), at most every few
seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import asyncpg

from occupancy.ids import SiteId, SpaceId, SpaceRef


@dataclass(frozen=True, slots=True)
class GatewayEntry:
    id: int
    bound: Mapping[SpaceRef, int]  # space reference → spaces.id


@dataclass(frozen=True, slots=True)
class Registry:
    gateways: Mapping[tuple[str, str], GatewayEntry] = field(default_factory=dict)

    def gateway(self, tenant: str, gateway: str) -> GatewayEntry | None:
        return self.gateways.get((tenant, gateway))


_QUERY = """
SELECT t.slug AS tenant, g.slug AS gateway, g.id AS gateway_id,
       si.slug AS site, sp.slug AS space, sp.id AS space_id
FROM gateways g
JOIN tenants t ON t.id = g.tenant_id
LEFT JOIN gateway_spaces gs ON gs.gateway_id = g.id
LEFT JOIN spaces sp ON sp.id = gs.space_id
LEFT JOIN sites si ON si.id = sp.site_id
"""


async def load_registry(con: asyncpg.Connection) -> Registry:
    """Read every gateway of every tenant with its bindings."""
    ids: dict[tuple[str, str], int] = {}
    bound: dict[tuple[str, str], dict[SpaceRef, int]] = {}
    for r in await con.fetch(_QUERY):
        key = (r["tenant"], r["gateway"])
        ids[key] = r["gateway_id"]
        spaces = bound.setdefault(key, {})
        if r["space_id"] is not None:
            spaces[SpaceRef(SiteId(r["site"]), SpaceId(r["space"]))] = r["space_id"]
    return Registry({k: GatewayEntry(ids[k], bound[k]) for k in ids})
