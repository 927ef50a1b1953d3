"""The broker's access rules as `parkbazaar broker config` writes them, on a real
Mosquitto with passwords: a gateway writes its own topics and no other tenant's,
even one with the same gateway id, cannot take events from ingest by joining its
shared subscription, and cannot take over ingest's session by naming its client id."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY

from dashboard_api.auth import hash_secret
from dashboard_api.broker import Identity, layout_for, mosquitto_conf, render
from occupancy.topics import ROOT
from stack.embedded import Mosquitto, free_port, mosquitto_binary, wait_port
from tests.support.database import count
from tests.support.ingest import running_ingest, settings_for
from tests.support.registry import GW, GW_OTHER, TENANT, batches, events_topic, make_events, seed_registry
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto

USERS = {"shiraz/gw-1": "pw-shiraz", "marvdasht/gw-1": "pw-marvdasht", "ingest": "pw-ingest",
         f"{TENANT}/{GW}": "pw-gw", f"{TENANT}/{GW_OTHER}": "pw-thief"}
SERVICES_PORT = free_port()


def _identities() -> list[Identity]:
    out = [Identity("ingest", "ingest", hash_secret(USERS["ingest"]))]
    for user, secret in USERS.items():
        if "/" in user:
            out.append(Identity.of_gateway(*user.split("/"), hash_secret(secret)))
    return out


@pytest.fixture
def guarded_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Gateways on the first listener (their client ids replaced by their usernames),
    ingest on the services listener (``--local``), as the generated config has them."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    port = free_port()
    layout = layout_for(tmp_path, pwd.getpwuid(os.geteuid()).pw_name, listen=f"127.0.0.1:{port}",
                        local=f"127.0.0.1:{SERVICES_PORT}")
    layout.path("data").mkdir()
    for name, text in render(_identities(), ROOT, layout).items():
        layout.path(name).write_text(text)
    broker = Mosquitto(tmp_path, port=port, persistence=False, config=layout.path("mosquitto.conf")).start()
    wait_port("127.0.0.1", SERVICES_PORT)
    yield broker
    broker.stop(kill=True)


def test_generated_gateway_listener_replaces_client_ids_by_usernames(tmp_path: Path) -> None:
    """What makes the session-takeover test below pass, in the generated configuration."""
    layout = layout_for(tmp_path, "mosquitto", listen="127.0.0.1:1883", local="127.0.0.1:1884")
    gateways, services = mosquitto_conf(layout).split("\nlistener ")[1:]
    assert "use_username_as_clientid true" in gateways
    assert "use_username_as_clientid" not in services


def _client(broker: Mosquitto, user: str, client_id: str = "", port: int = 0,
            clean: bool = True) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv311, clean_session=clean)
    client.username_pw_set(user, USERS[user])
    client.connect("127.0.0.1", port or broker.port)
    client.loop_start()
    return client


def test_gateway_writes_its_own_topics_and_not_another_tenants_gateway_of_the_same_id(
        guarded_broker: Mosquitto) -> None:
    seen: list[str] = []
    marker = threading.Event()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        seen.append(msg.topic)
        if msg.payload == b"marker":
            marker.set()

    reader = _client(guarded_broker, "ingest", port=SERVICES_PORT)
    reader.on_message = on_message
    subscribed = threading.Event()
    reader.on_subscribe = lambda *_a: subscribed.set()
    reader.subscribe("parkbazaar/v1/#", qos=1)
    assert subscribed.wait(10)
    gateway = _client(guarded_broker, "shiraz/gw-1")
    try:
        sent = [gateway.publish(t, b"x", qos=1) for t in (
            "parkbazaar/v1/marvdasht/gw-1/events", "parkbazaar/v1/marvdasht/gw-1/status",
            "parkbazaar/v1/shiraz/gw-2/events", "parkbazaar/v1/shiraz/gw-1/cmd",
            "parkbazaar/v1/shiraz/gw-1/events", "parkbazaar/v1/shiraz/gw-1/status")]
        sent.append(gateway.publish("parkbazaar/v1/shiraz/gw-1/health", b"marker", qos=1))
        for info in sent:
            info.wait_for_publish(10)
        assert marker.wait(10), f"the gateway's own topics were refused: {seen}"
    finally:
        for client in (gateway, reader):
            client.disconnect()
            client.loop_stop()
    assert seen == ["parkbazaar/v1/shiraz/gw-1/events", "parkbazaar/v1/shiraz/gw-1/status",
                    "parkbazaar/v1/shiraz/gw-1/health"]


async def test_gateway_joining_ingests_shared_subscription_takes_no_events(
        guarded_broker: Mosquitto, database: str, db: asyncpg.Connection) -> None:
    """Mosquitto's acl_file never checks a subscription: a client in ingest's share group
    is handed its share of the events, which the read rule then drops."""
    await seed_registry(database)
    url = f"mqtt://ingest:{USERS['ingest']}@127.0.0.1:{SERVICES_PORT}"
    thieves = []
    for group in ("ingest", "parkbazaar", "ingest-1"):  # the documented name, and guesses
        thief = _client(guarded_broker, f"{TENANT}/{GW_OTHER}")
        joined = threading.Event()
        thief.on_subscribe = lambda *_a, joined=joined: joined.set()
        thief.subscribe(f"$share/{group}/{ROOT}/+/+/events", qos=1)
        assert joined.wait(10)
        thieves.append(thief)
    gateway = _client(guarded_broker, f"{TENANT}/{GW}")
    try:
        async with running_ingest(settings_for(database, url, ROOT, protocol=5)):
            lost = await _lost_of_200(gateway, db)
            assert lost == 0, f"{lost} of 200 events were taken by the share group's thieves"
    finally:
        for client in (gateway, *thieves):
            client.disconnect()
            client.loop_stop()


async def _lost_of_200(gateway: mqtt.Client, db: asyncpg.Connection) -> int:
    """Publish 200 events as the gateway; how many are not stored (waiting up to 20 s)."""
    sent = [gateway.publish(events_topic(ROOT), p, qos=1) for p in batches(make_events(200), 1)]
    for info in sent:
        await asyncio.to_thread(info.wait_for_publish, 10)
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: _all_stored(db, 200), timeout=20)
    return 200 - await count(db, "SELECT count(*) FROM occupancy_events")


async def _all_stored(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM occupancy_events") == n


async def test_gateway_naming_ingests_client_id_cannot_take_over_its_session(
        guarded_broker: Mosquitto, database: str, db: asyncpg.Connection) -> None:
    """Same client id, other connection: the broker would close ingest's and hand its
    persistent session (and the events queued in it) to the newcomer."""
    await seed_registry(database)
    url = f"mqtt://ingest:{USERS['ingest']}@127.0.0.1:{SERVICES_PORT}"
    settings = settings_for(database, url, ROOT, protocol=5)
    reconnects = REGISTRY.get_sample_value("parkbazaar_ingest_mqtt_reconnects_total") or 0.0
    gateway = _client(guarded_broker, f"{TENANT}/{GW}")
    thieves: list[mqtt.Client] = []
    try:
        async with running_ingest(settings):
            thieves.append(_client(guarded_broker, f"{TENANT}/{GW_OTHER}",
                                   client_id=settings.ingest.client_id, clean=False))
            lost = await _lost_of_200(gateway, db)
            assert lost == 0, f"{lost} of 200 events lost to a session takeover"
    finally:
        for client in (gateway, *thieves):
            client.disconnect()
            client.loop_stop()
    assert (REGISTRY.get_sample_value("parkbazaar_ingest_mqtt_reconnects_total") or 0.0) == reconnects
