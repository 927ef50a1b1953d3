"""LoRaWAN sensors through ChirpStack end to end: uplink events on a real Mosquitto (as
ChirpStack's broker) → the gateway's chirpstack source → outbox → ingest → PostgreSQL →
the API's space states; duplicates, reordering, a rejoin with an fCnt reset, an unknown
DevEUI and garbage are counted in the gateway's health, and nothing reaches a dead letter."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from occupancy.health import LorawanCounts, decode_health
from occupancy.lorawan.chirpstack import (
    RxGateway,
    event_topic,
    join_payload,
    status_payload,
    uplink_payload,
)
from occupancy.lorawan.frames import Reading
from occupancy.lorawan.models import encode
from stack.embedded import Mosquitto
from tests.support.api import app_for, asgi_client
from tests.support.gateways import config_dict, make_config, running_gateway
from tests.support.ingest import running_ingest, settings_for
from tests.support.mqtt import Subscriber, publish
from tests.support.registry import SITE, TENANT, seed_registry
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto
EUI1, EUI2, EUI3, STRANGER = (f"a84041000000000{n}" for n in "123f")
BAYS = ["S-001", "S-002", "S-003"]
MODEL = "nwave-nps405"


def frame(occupied: bool) -> bytes:
    """What an Nwave sensor sends on fPort 1 for this state (the model's own encoder)."""
    port, payload = encode(MODEL, Reading(occupied=occupied))
    assert port == 1
    return payload


@pytest.fixture
async def api(database: str) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app_for(database)) as c:
        yield c


async def states(api: httpx.AsyncClient) -> dict[str, str]:
    r = await api.get(f"/v1/sites/{TENANT}/{SITE}/spaces")
    assert r.status_code == 200, r.text
    return {s["space"]: s["state"] for s in r.json() if s["space"] in BAYS}


class Chirpstack:
    """What ChirpStack would publish for one application, in order, at QoS 1."""

    def __init__(self, url: str, app: str) -> None:
        self.url, self.app = url, app
        self.t0 = datetime.now(UTC) - timedelta(seconds=30)
        self.messages: list[tuple[str, bytes]] = []

    def up(self, eui: str, f_cnt: int, data: bytes, *, second: int, dedup: str | None = None,
           addr: str = "01000001", decoded: dict[str, object] | None = None) -> None:
        at = self.t0 + timedelta(seconds=second)
        payload = uplink_payload(self.app, eui, dedup_id=dedup or str(uuid.uuid4()), time=at,
                                 dev_addr=addr, f_cnt=f_cnt, f_port=1, data=data,
                                 rx=(RxGateway("gw-a", -97, 6.5, at),), decoded=decoded)
        self.messages.append((event_topic(self.app, eui, "up"), payload))

    def send(self) -> None:
        publish(self.url, self.messages)
        self.messages = []


async def test_uplinks_reach_the_api_once_and_in_order_and_bad_input_is_counted(
        database: str, db: asyncpg.Connection, topic_prefix: str, tmp_path: Path,
        broker: Mosquitto, api: httpx.AsyncClient) -> None:
    await seed_registry(database)
    app = str(uuid.uuid4())  # this test's own application on the shared broker
    cs_device = {
        "id": "chirpstack", "kind": "chirpstack", "application_id": app,
        "broker": {"url": broker.url, "client_id": f"cs-{app[:8]}", "reconnect_initial_s": 0.2,
                   "reconnect_max_s": 1.0},
        "sensors": [{"dev_eui": EUI1.upper(), "model": MODEL, "space": f"{SITE}/S-001"},
                    {"dev_eui": EUI2, "model": MODEL, "space": f"{SITE}/S-002"},
                    {"dev_eui": EUI3, "occupied_path": "object.occupied", "space": f"{SITE}/S-003",
                     "id": "bay-3"}]}
    config = make_config(config_dict(broker.url, topic_prefix, tmp_path / "state", [cs_device]),
                         tmp_path)
    health_seen = Subscriber(broker.url, topic_prefix)
    cs = Chirpstack(broker.url, app)
    async with running_ingest(settings_for(database, broker.url, topic_prefix)), \
            running_gateway(config) as (service, _):
        await wait_until(lambda: _true(any(s.connected for s in service.sources)), 10,
                         "the gateway subscribed at ChirpStack's broker")
        cs.up(EUI1, 10, frame(True), second=1, dedup="d-10")
        cs.up(EUI1, 10, frame(True), second=1, dedup="d-10")  # heard by a second gateway
        cs.up(EUI1, 10, frame(True), second=1)  # the same frame under another deduplicationId
        cs.up(EUI2, 5, frame(True), second=2)
        cs.up(EUI2, 6, frame(False), second=4)
        cs.up(EUI2, 5, frame(True), second=2)  # delivered late: must not overwrite fCnt 6
        cs.messages.append((event_topic(app, EUI1, "join"),
                            join_payload(app, EUI1, dedup_id="j1", time=cs.t0 + timedelta(seconds=5),
                                         dev_addr="01000002")))
        cs.up(EUI1, 0, frame(False), second=6, addr="01000002")  # after the rejoin: fCnt from 0
        cs.up(EUI3, 77, b"\x09", second=7, decoded={"occupied": True})
        cs.messages.append((event_topic(app, EUI2, "status"),
                            status_payload(app, EUI2, dedup_id="s1", time=cs.t0 + timedelta(seconds=8),
                                           battery_pct=77.0)))
        cs.up(STRANGER, 1, frame(True), second=8)
        cs.messages.append((event_topic(app, EUI1, "up"), b"\x00garbage{"))
        cs.messages.append((f"application/{app}/device/not-a-eui/event/up", b"{}"))
        await asyncio.to_thread(cs.send)

        want = {"S-001": "free", "S-002": "free", "S-003": "occupied"}
        await wait_until(lambda: _states_are(api, want), 15, "the bays in the API")
        counts = LorawanCounts(uplinks=5, duplicates=2, late=1, fcnt_resets=1, joins=1,
                               unknown_devices=1, undecodable=0, malformed=2)
        await wait_until(lambda: _true(service.lorawan_counts() == counts), 10,
                         lambda: f"the counts {counts} (have {service.lorawan_counts()})")

        health = {d.id: d for d in service.health().devices}
        assert health["chirpstack"].ok and health["chirpstack"].kind == "chirpstack"
        s1, s2 = health[EUI1], health[EUI2]
        assert (s1.kind, s1.ok, s1.battery, s1.rssi_dbm, s1.snr_db, s1.f_cnt, s1.clock) == (
            "lorawan", True, None, -97.0, 6.5, 0, "network")
        assert s2.battery == 77.0 and s2.f_cnt == 6  # the battery from ChirpStack's status event
        assert health["bay-3"].unknown == 0

        def published_counts() -> LorawanCounts | None:
            reports = [decode_health(p) for t, p, _ in health_seen.received() if t.endswith("/health")]
            return reports[-1].lorawan if reports else None

        await wait_until(lambda: _true(published_counts() == counts), 10, "the counts in `health`")
    health_seen.close()
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 0
    # each confirmed change is stored once: S-001 occupied then free, S-002 occupied then free,
    # S-003 occupied (heartbeats are an hour apart and not due)
    changes = await db.fetch(
        "SELECT s.slug, e.state FROM occupancy_events e JOIN spaces s ON s.id = e.space_id "
        "WHERE e.kind = 'change' ORDER BY e.seq")
    assert [(r["slug"], r["state"]) for r in changes] == [
        ("S-001", "occupied"), ("S-002", "occupied"), ("S-002", "free"), ("S-001", "free"),
        ("S-003", "occupied")]


async def _states_are(api: httpx.AsyncClient, want: dict[str, str]) -> bool:
    return await states(api) == want


async def _true(value: bool) -> bool:
    return value


async def test_uplinks_published_while_the_gateway_is_down_arrive_when_it_is_back(
        topic_prefix: str, tmp_path: Path, broker: Mosquitto) -> None:
    app = str(uuid.uuid4())
    cs_device = {
        "id": "chirpstack", "kind": "chirpstack", "application_id": app,
        "broker": {"url": broker.url, "client_id": f"cs-{app[:8]}", "reconnect_initial_s": 0.2,
                   "reconnect_max_s": 1.0},
        "sensors": [{"dev_eui": EUI1, "model": MODEL, "space": f"{SITE}/S-001"}]}
    config = make_config(config_dict(broker.url, topic_prefix, tmp_path / "state", [cs_device]),
                         tmp_path)
    events = Subscriber(broker.url, topic_prefix)  # in place of ingest: the events are taken
    async with running_gateway(config) as (service, _):  # the persistent session is made
        await wait_until(lambda: _true(all(s.connected for s in service.sources)), 10)
    cs = Chirpstack(broker.url, app)
    cs.up(EUI1, 1, frame(True), second=1)
    cs.up(EUI1, 2, frame(False), second=2)
    await asyncio.to_thread(cs.send)  # QoS 1, nobody connected: the broker queues them
    async with running_gateway(config) as (service, _):
        await wait_until(lambda: _true(service.lorawan_counts() == LorawanCounts(uplinks=2)), 10,
                         lambda: f"the queued uplinks (have {service.lorawan_counts()})")
        await wait_until(lambda: _true(service.stats().changes == 2), 10, "the two changes stored")
    assert events.seqs() == [1, 2]
    events.close()
