"""Helpers of the integration tests: a registry, a publisher, a running ingest."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.service import run_ingest
from occupancy.config import Settings, load_settings
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
    return [encode_events(EventBatch(GatewayId(gateway), boot, tuple(events[i:i + size])))
            for i in range(0, len(events), size)]


def publish(url: str, messages: Sequence[tuple[str, bytes]], *, retain: bool = False,
            qos: int = 1) -> None:
    """Publish (QoS 1: and wait until the broker acknowledged every message)."""
    settings = load_settings(mqtt_url=url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect(settings.mqtt.host, settings.mqtt.port)
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=qos, retain=retain) for t, p in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def events_topic(prefix: str, gateway: str = GW) -> str:
    return topic(TENANT, gateway, Channel.EVENTS, prefix)


def settings_for(dsn: str, url: str, prefix: str, **ingest: object) -> Settings:
    return load_settings(database_url=dsn, mqtt_url=url, topic_prefix=prefix,
                         ingest={"client_id": f"ingest-{prefix.split('/')[0]}", **ingest})


@contextlib.asynccontextmanager
async def running_ingest(settings: Settings) -> AsyncIterator[asyncio.Task[dict[str, int]]]:
    """Ingest as a task of this loop; stopped (drained) on exit."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, stop, ready))
    done, _ = await asyncio.wait({task, asyncio.ensure_future(ready.wait())},
                                 return_when=asyncio.FIRST_COMPLETED, timeout=20)
    if task in done:
        task.result()  # raises what went wrong
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)


async def count(con: asyncpg.Connection, sql: str, *args: object) -> int:
    value = await con.fetchval(sql, *args)
    return int(value or 0)


async def has_seq(con: asyncpg.Connection, seq: int) -> bool:
    """True once an event with this ``seq`` is stored (a marker that what came before is in)."""
    return await count(con, "SELECT count(*) FROM occupancy_events WHERE seq = $1", seq) > 0
