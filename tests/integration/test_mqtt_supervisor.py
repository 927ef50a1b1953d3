"""The one MQTT connection policy (``occupancy.mqtt_client``) against real sockets and a
real Mosquitto: retries are bounded, counted and end in a clear give-up; ingest stops
with ``BrokerUnavailable`` when the broker stays away, and resumes when it returns."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import paho.mqtt.client as paho
import pytest
from prometheus_client import REGISTRY

from ingest import BrokerUnavailable
from ingest.service import run_ingest
from occupancy.backoff import Backoff
from occupancy.config import MqttUrl, load_settings
from occupancy.mqtt_client import ClientSpec, Supervisor
from stack.embedded import Mosquitto, free_port

FAST = Backoff(initial_s=0.05, max_s=0.2)


def _retries() -> float:
    return REGISTRY.get_sample_value("parkbazaar_ingest_mqtt_retries_total") or 0.0


def test_a_closed_port_is_retried_counted_and_given_up_at_the_bound() -> None:
    gave_up = threading.Event()
    reasons: list[str] = []

    def give_up(reason: str) -> None:
        reasons.append(reason)
        gave_up.set()

    link = Supervisor(ClientSpec(MqttUrl("127.0.0.1", free_port()), "sup-closed"),
                      backoff=FAST, give_up_after_s=1.0, on_connected=lambda _c: None,
                      on_give_up=give_up)
    link.start()
    try:
        assert gave_up.wait(15)
    finally:
        link.stop()
    assert link.connects == 0 and link.retries >= 3
    assert "giving up" in reasons[0]


def test_the_supervisor_reconnects_and_subscribes_again_after_a_broker_restart(
        mosquitto_factory: Callable[..., Mosquitto]) -> None:
    broker = mosquitto_factory(persistence=False)
    connected: list[paho.Client] = []
    up = threading.Semaphore(0)

    def on_connected(client: paho.Client) -> None:
        connected.append(client)
        up.release()

    spec = ClientSpec(MqttUrl.parse(broker.url), "sup-restart", subscriptions=("sup/#",))
    link = Supervisor(spec, backoff=FAST, on_connected=on_connected)
    link.start()
    try:
        assert up.acquire(timeout=10)
        broker.stop()
        broker.start()
        assert up.acquire(timeout=15)  # a second accepted connection, by the supervisor
    finally:
        link.stop()
    assert link.connects == 2 and link.retries >= 1 and len(connected) == 2


async def test_ingest_exits_with_broker_unavailable_when_the_broker_stays_away(
        database: str, topic_prefix: str, mosquitto_factory: Callable[..., Mosquitto]) -> None:
    broker = mosquitto_factory()
    settings = load_settings(
        database_url=database, mqtt_url=broker.url, topic_prefix=topic_prefix,
        ingest={"client_id": f"ingest-{topic_prefix.split('/')[0]}", "retry_max_s": 1.5,
                "reconnect_initial_s": 0.05, "reconnect_max_s": 0.2})
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, stop, ready))
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait({task, waiter}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    assert ready.is_set()
    before = _retries()
    broker.stop()
    with pytest.raises(BrokerUnavailable, match="giving up"):
        await asyncio.wait_for(task, 30)
    assert _retries() - before >= 2


async def test_ingest_without_a_broker_at_start_says_so_in_time(
        database: str, topic_prefix: str) -> None:
    settings = load_settings(
        database_url=database, mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
        topic_prefix=topic_prefix, ingest={"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2})
    with pytest.raises(BrokerUnavailable, match="no MQTT connection"):
        await asyncio.wait_for(run_ingest(settings, asyncio.Event()), 30)


def test_the_supervisor_goes_to_the_next_node_when_one_is_down_or_lost(
        mosquitto_factory: Callable[..., Mosquitto]) -> None:
    first, second = mosquitto_factory(persistence=False), mosquitto_factory(persistence=False)
    dead = free_port()
    url = MqttUrl.parse(f"mqtt://127.0.0.1:{dead},127.0.0.1:{first.port},127.0.0.1:{second.port}")
    up = threading.Semaphore(0)
    link = Supervisor(ClientSpec(url, "sup-nodes"), backoff=FAST, on_connected=lambda _c: up.release())
    link.start()
    try:
        assert up.acquire(timeout=10)
        assert link.where == f"127.0.0.1:{first.port}"  # past the node that is down
        first.stop()
        assert up.acquire(timeout=15)
        assert link.where == f"127.0.0.1:{second.port}"  # the next node, not the lost one again
    finally:
        link.stop()
    assert link.connects == 2
