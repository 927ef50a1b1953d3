"""The broker's access rules as deployed (deploy/mosquitto/parkbazaar.acl), on a
real Mosquitto with passwords: a gateway writes its own topics and no other
tenant's, even one with the same gateway id, and cannot take events from
ingest by joining its shared subscription."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY

from occupancy.topics import ROOT
from parkbazaar.embedded import Mosquitto, free_port, mosquitto_binary, wait_port
from tests.integration.support import (
    GW,
    GW_OTHER,
    TENANT,
    batches,
    count,
    events_topic,
    make_events,
    running_ingest,
    seed_registry,
    settings_for,
    wait_until,
)

pytestmark = pytest.mark.mosquitto

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
ACL = DEPLOY / "parkbazaar.acl"
USERS = {"shiraz/gw-1": "pw-shiraz", "marvdasht/gw-1": "pw-marvdasht", "ingest": "pw-ingest",
         f"{TENANT}/{GW}": "pw-gw", f"{TENANT}/{GW_OTHER}": "pw-thief"}


@pytest.fixture
def guarded_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    tool = shutil.which("mosquitto_passwd")
    if tool is None or mosquitto_binary() is None:
        pytest.skip("mosquitto or mosquitto_passwd is not installed")
    passwords = tmp_path / "passwd"
    passwords.touch(mode=0o600)
    for user, password in USERS.items():
        subprocess.run([tool, "-b", str(passwords), user, password], check=True)
    # as deploy/mosquitto/mosquitto.conf: gateways on the first listener, their client id
    # replaced by their username; services on a second one
    broker = Mosquitto(tmp_path / "guarded", persistence=False, extra_conf=(
        f"{GATEWAY_LISTENER}password_file {passwords}\nacl_file {ACL}\n"
        f"listener {SERVICES_PORT} 127.0.0.1\n")).start()
    wait_port("127.0.0.1", SERVICES_PORT)
    yield broker
    broker.stop(kill=True)


GATEWAY_LISTENER = "use_username_as_clientid true\n"
SERVICES_PORT = free_port()


def test_deployed_gateway_listener_replaces_client_ids_by_usernames() -> None:
    """What the broker above copies from the deployed configuration."""
    first_listener = (DEPLOY / "mosquitto.conf").read_text().split("\nlistener ")[1]
    assert f"\n{GATEWAY_LISTENER}" in first_listener


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
