"""The test registry (tenant t1, site lot1 with S-001…S-050, gateways gw1 and gw2) and
the event messages for it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from occupancy.ids import GatewayId, SiteId, SpaceId, SpaceRef
from occupancy.model import OccupancyEvent, Source, SpaceState
from occupancy.topics import Channel, topic
from occupancy.wire import EventBatch, encode_events

TENANT, SITE, GW, GW_OTHER = "t1", "lot1", "gw1", "gw2"
SPACES = [f"S-{i:03d}" for i in range(1, 51)]


async def seed_registry(dsn: str, tenant: str = TENANT) -> None:
    """Tenant t1 (or ``tenant``), site lot1 with S-001…S-050 bound to gw1; gw2 bound to nothing."""
    con = await asyncpg.connect(dsn)
    try:
        tid = await con.fetchval("INSERT INTO tenants (slug, name) VALUES ($1, 'Test') RETURNING id",
                                 tenant)
        sid = await con.fetchval(
            "INSERT INTO sites (tenant_id, slug, kind, name, lat, lon) "
            "VALUES ($1, $2, 'parking', 'Lot 1', 29.6, 52.5) RETURNING id", tid, SITE)
        await con.executemany("INSERT INTO spaces (site_id, slug) VALUES ($1, $2)",
                              [(sid, s) for s in SPACES])
        gid = await con.fetchval("INSERT INTO gateways (tenant_id, slug) VALUES ($1, $2) RETURNING id",
                                 tid, GW)
        await con.execute("INSERT INTO gateways (tenant_id, slug) VALUES ($1, $2)", tid, GW_OTHER)
        await con.execute("INSERT INTO gateway_spaces SELECT $1, id FROM spaces WHERE site_id = $2",
                          gid, sid)
    finally:
        await con.close()


def make_events(n: int, *, start_seq: int = 1, t0: datetime | None = None,
                spaces: Sequence[str] = SPACES) -> list[OccupancyEvent]:
    """``n`` events over the spaces, one a second, states alternating per space."""
    t0 = t0 or datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=n + 60)
    out = []
    for i in range(n):
        seq = start_seq + i
        space = spaces[i % len(spaces)]
        state = SpaceState.OCCUPIED if (i // len(spaces)) % 2 == 0 else SpaceState.FREE
        out.append(OccupancyEvent(seq=seq, space=SpaceRef(SiteId(SITE), SpaceId(space)),
                                  state=state, at=t0 + timedelta(seconds=i), source=Source.SENSOR))
    return out


def batches(events: Sequence[OccupancyEvent], size: int, gateway: str = GW,
            boot: int = 1) -> list[bytes]:
    """The events as ``events`` messages of ``size`` events each."""
    return [encode_events(EventBatch(GatewayId(gateway), boot, tuple(events[i:i + size])))
            for i in range(0, len(events), size)]


def events_topic(prefix: str, gateway: str = GW) -> str:
    """The ``events`` topic of a gateway of tenant t1 under ``prefix``."""
    return topic(TENANT, gateway, Channel.EVENTS, prefix)


def status_topic(prefix: str, gateway: str = GW) -> str:
    """The ``status`` topic of a gateway of tenant t1 under ``prefix``."""
    return topic(TENANT, gateway, Channel.STATUS, prefix)
