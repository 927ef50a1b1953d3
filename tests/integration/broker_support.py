"""Helpers of the broker tests: two tenants with a gateway of the same id, credentials
issued through the registry, a broker run from the files ``parkbazaar broker config``
writes, and a paho probe that records what the broker answered."""

from __future__ import annotations

import os
import pwd
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from dashboard_api import registry
from dashboard_api.broker import BrokerLayout, Listener
from dashboard_api.broker_registry import create_account
from dashboard_api.broker_sync import Owner, write_config
from stack.embedded import Mosquitto, free_port
from tests.integration.support import GW, GW_OTHER, TENANT, seed_registry

OTHER_TENANT = "t2"  # has a gateway called GW too


async def seed_two_tenants(dsn: str) -> None:
    """``seed_registry``'s t1 (gw1 bound to lot1, gw2 to nothing) and the same under t2, so a
    message that got through for t2/gw1 would be stored."""
    await seed_registry(dsn)
    await seed_registry(dsn, OTHER_TENANT)


@dataclass
class Credentials:
    """Secrets issued for the test: gateway (tenant, id) → secret, and the service accounts."""

    gateways: dict[tuple[str, str], str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)


async def issue_all(dsn: str) -> Credentials:
    """Credentials of t1/gw1, t1/gw2, t2/gw1, and the accounts ingest-1 and ops-1."""
    creds = Credentials()
    con = await asyncpg.connect(dsn)
    try:
        for key in ((TENANT, GW), (TENANT, GW_OTHER), (OTHER_TENANT, GW)):
            creds.gateways[key] = await registry.rotate_credentials(con, "test", *key)
        creds.accounts["ingest-1"] = await create_account(con, "ingest-1", "ingest", actor="test")
        creds.accounts["ops-1"] = await create_account(con, "ops-1", "operator", actor="test")
    finally:
        await con.close()
    return creds


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


async def start_broker(dsn: str, out: Path, prefix: str, listeners: Sequence[Listener],
                       started: list[Mosquitto]) -> Mosquitto:
    """Write the broker's files from the registry (as ``broker config`` does) and run them.
    The first listener's port is the broker's ``port``."""
    layout = BrokerLayout(out, listeners, current_user(), out / "mosquitto.log")
    con = await asyncpg.connect(dsn)
    try:
        await write_config(con, layout, prefix, Owner.named(layout.user))
    finally:
        await con.close()
    broker = Mosquitto(out, port=listeners[0].port, config=out / "mosquitto.conf").start()
    started.append(broker)
    return broker


def plain(port: int | None = None) -> Listener:
    return Listener("127.0.0.1", port or free_port())


class Probe:
    """An MQTT 5 client that records the broker's answers: CONNACK, PUBACK reasons,
    SUBACKs, disconnects and messages. paho reconnects it after a loss (1 s)."""

    def __init__(self, port: int, username: str | None, password: str | None = None, *,
                 tls: ssl.SSLContext | None = None, connect: bool = True,
                 client_id: str | None = None) -> None:
        self.lock = threading.Lock()
        self.connacks: list[str] = []
        self.disconnects: list[float] = []
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda _c, _u, _f, rc, _p=None: self._add(self.connacks, str(rc))
        self.client.on_disconnect = lambda *_: self._add(self.disconnects, time.monotonic())
        self.client.on_message = lambda _c, _u, m: self._add(self.messages, (m.topic, bytes(m.payload)))
        if connect:
            self.client.connect_async("127.0.0.1", port)
            self.client.loop_start()

    def _add(self, to: list[Any], item: Any) -> None:
        with self.lock:
            to.append(item)

    def wait(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"not in time: connacks {self.connacks}, "
                                     f"{len(self.disconnects)} disconnects, {len(self.messages)} messages")
            time.sleep(0.02)

    def connected(self, timeout: float = 10.0) -> Probe:
        self.wait(lambda: self.client.is_connected(), timeout)
        return self

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> str:
        """Publish at QoS 1; the broker's PUBACK reason ("Success", "Not authorized", …)."""
        reasons: list[str] = []
        done = threading.Event()

        def on_publish(_c: Any, _u: Any, _mid: int, rc: Any, _p: Any = None) -> None:
            reasons.append(str(rc))
            done.set()

        self.client.on_publish = on_publish
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"not sent: {info.rc}"
        assert done.wait(10), "no PUBACK"
        return reasons[0]

    def subscribe(self, topic: str) -> list[str]:
        """Subscribe at QoS 1; the SUBACK's reason codes."""
        codes: list[str] = []
        done = threading.Event()

        def on_subscribe(_c: Any, _u: Any, _mid: int, rcs: list[Any], _p: Any = None) -> None:
            codes.extend(str(r) for r in rcs)
            done.set()

        self.client.on_subscribe = on_subscribe
        self.client.subscribe(topic, qos=1)
        assert done.wait(10), "no SUBACK"
        return codes

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def refused(port: int, username: str | None, password: str | None = None,
            tls: ssl.SSLContext | None = None) -> str:
    """Connect once, without retrying; the CONNACK's reason (or the error) as text."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"once-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)
    answer: list[str] = []
    client.on_connect = lambda _c, _u, _f, rc, _p=None: answer.append(str(rc))
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        return f"error: {exc}"
    deadline = time.monotonic() + 5
    while not answer and time.monotonic() < deadline:
        client.loop(0.1)
    client.disconnect()
    return answer[0] if answer else "no answer"
