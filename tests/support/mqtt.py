"""MQTT clients of the tests: a QoS 1 publisher, a recording subscriber, and a probe
that records what the broker answered (CONNACK, PUBACK and SUBACK reasons)."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from occupancy.config import MqttUrl, load_settings
from occupancy.wire import decode_events, decode_status
from tests.support.waiting import wait_until_sync


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


class Subscriber:
    """A paho subscriber on ``{prefix}/#`` that records what arrives (persistent session)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._prefix = prefix
        broker = MqttUrl.parse(url)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex}",
                                   clean_session=False, protocol=mqtt.MQTTv311)
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._broker = broker
        self.resume()

    def resume(self) -> None:
        """(Re)connect; the persistent session hands over what was queued meanwhile."""
        self._subscribed.clear()
        self._client.connect(self._broker.host, self._broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(5)

    def pause(self) -> None:
        """Disconnect cleanly: the broker queues our QoS 1 messages until ``resume``."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{self._prefix}/#", qos=1)
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def seqs(self) -> list[int]:
        msgs = self.received()
        return [e.seq for t, p, _ in msgs if t.endswith("/events")
                for e in decode_events(p).events]

    def statuses(self) -> list[tuple[bool, int]]:
        msgs = self.received()
        return [(s.online, s.boot) for s in
                (decode_status(p) for t, p, _ in msgs if t.endswith("/status"))]

    def received(self) -> list[tuple[str, bytes, bool]]:
        """(topic, payload, retained) of every message so far, in arrival order."""
        with self._lock:
            return list(self.messages)

    def wait(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        """Until ``check()`` holds; the failure names what arrived so far."""
        wait_until_sync(check, timeout, lambda: f"statuses {self.statuses()}, "
                                                f"{len(self.seqs())} events:")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


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
        """Until ``check()`` holds; the failure names what the broker answered so far."""
        wait_until_sync(check, timeout, lambda: f"connacks {self.connacks}, {len(self.disconnects)} "
                                                f"disconnects, {len(self.messages)} messages:")

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
