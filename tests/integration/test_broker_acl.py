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

from occupancy.topics import ROOT
from parkbazaar.embedded import Mosquitto, mosquitto_binary
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

ACL = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "parkbazaar.acl"
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
    broker = Mosquitto(tmp_path / "guarded", persistence=False,
                       extra_conf=f"password_file {passwords}\nacl_file {ACL}\n").start()
    yield broker
    broker.stop(kill=True)


def _client(broker: Mosquitto, user: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.username_pw_set(user, USERS[user])
    client.connect("127.0.0.1", broker.port)
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

    reader = _client(guarded_broker, "ingest")
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
    url = f"mqtt://ingest:{USERS['ingest']}@127.0.0.1:{guarded_broker.port}"
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
            sent = [gateway.publish(events_topic(ROOT), p, qos=1)
                    for p in batches(make_events(200), 1)]
            for info in sent:
                await asyncio.to_thread(info.wait_for_publish, 10)
            with contextlib.suppress(TimeoutError):
                await wait_until(lambda: _all_stored(db, 200), timeout=20)
            stored = await count(db, "SELECT count(*) FROM occupancy_events")
            assert stored == 200, f"{200 - stored} of 200 events were taken by the share group's thieves"
    finally:
        for client in (gateway, *thieves):
            client.disconnect()
            client.loop_stop()


async def _all_stored(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM occupancy_events") == n
