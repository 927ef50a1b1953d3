"""The broker side of ingest: a paho-mqtt client with manual acknowledgement.

How this works: paho runs its network loop in its own thread. ``on_message``
takes room in a ``Backlog`` (at most ``queue_max_messages`` messages and
``queue_max_bytes`` of payload received but not yet acknowledged: when the
database is slow, the network thread blocks here, stops reading, and the
broker holds the rest) and hands the message to the asyncio loop. The byte
bound matters for QoS 0, which the broker's in-flight limit does not cover: a
flood of 1 MiB messages while a commit is slow would otherwise hold up to
10,000 MiB in ingest. The service
acknowledges (PUBACK) only after the transaction holding the message
committed; ``ack`` frees the slot. Messages of an earlier connection are not
acknowledged on the new one: the broker redelivers them and the database
ignores what it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest import metrics
from ingest.plan import Received
from occupancy.config import IngestSettings, MqttUrl
from occupancy.topics import Channel, subscription

log = logging.getLogger(__name__)
LOG_PAUSE_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Handle:
    mid: int
    qos: int
    generation: int
    size: int = 0  # payload bytes, given back to the backlog on ack


class Backlog:
    """Messages and payload bytes received and not yet acknowledged, bounded in both.

    ``take`` blocks the network thread while the message does not fit (one
    message always fits an empty backlog, whatever its size); ``give`` frees it."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self.messages = self.bytes = 0
        self._changed = threading.Condition()
        self._logged_at = -LOG_PAUSE_EVERY_S

    def _fits(self, size: int) -> bool:
        return self.messages == 0 or (self.messages < self.max_messages
                                      and self.bytes + size <= self.max_bytes)

    def take(self, size: int, closing: Callable[[], bool]) -> bool:
        """Room for one message of ``size`` bytes; False if ``closing`` turned true first."""
        with self._changed:
            if not self._fits(size):
                self._paused()
            while not self._fits(size):
                if closing():
                    return False
                self._changed.wait(0.5)
            self.messages += 1
            self.bytes += size
            return True

    def _paused(self) -> None:
        metrics.BACKLOG_PAUSES.inc()
        now = time.monotonic()
        if now - self._logged_at >= LOG_PAUSE_EVERY_S:  # at most one line a minute
            self._logged_at = now
            log.info("backlog full (%d messages, %d bytes): reading paused",
                     self.messages, self.bytes)

    def give(self, messages: int, size: int) -> None:
        with self._changed:
            self.messages -= messages
            self.bytes -= size
            self._changed.notify_all()


class IngestClient:
    """Subscribe, hand messages to asyncio, acknowledge after commit."""

    def __init__(self, url: MqttUrl, settings: IngestSettings, prefix: str,
                 loop: asyncio.AbstractEventLoop, deliver: Callable[[Received], None],
                 on_reconnect: Callable[[], None] = lambda: None) -> None:
        self._url, self._settings, self._prefix = url, settings, prefix
        self._loop, self._deliver, self._on_reconnect = loop, deliver, on_reconnect
        self._backlog = Backlog(settings.queue_max_messages, settings.queue_max_bytes)
        self._generation = 0
        self._connected = threading.Event()
        self._closing = False
        # set (on the loop) when the broker acknowledged this connection's subscriptions
        self.subscribed = asyncio.Event()
        self.client = self._make_client()

    @property
    def protocol(self) -> int:
        """The settings' protocol, unless the broker URL says it speaks only 3.1.1."""
        return min(self._settings.protocol, self._url.protocol)

    @property
    def shared(self) -> bool:
        if self._settings.shared is not None:
            return self._settings.shared
        return self.protocol == 5

    def _make_client(self) -> mqtt.Client:
        protocol = mqtt.MQTTv5 if self.protocol == 5 else mqtt.MQTTv311
        # MQTT 3.1.1 has no session expiry: 0 means no persistent session there too
        persistent = self._settings.session_expiry_s > 0
        kwargs: dict[str, Any] = {"clean_session": not persistent} if protocol == mqtt.MQTTv311 else {}
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self._settings.client_id,
                             protocol=protocol, manual_ack=True, **kwargs)
        if self._url.username:
            client.username_pw_set(self._url.username, self._url.password)
        s = self._settings
        if self._url.tls or s.tls_ca or s.tls_cert:
            client.tls_set(ca_certs=_path(s.tls_ca), certfile=_path(s.tls_cert), keyfile=_path(s.tls_key))
        client.max_inflight_messages_set(100)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    @property
    def share_group(self) -> str:
        return self._settings.share_group or share_group_for(self._url.password)

    def filters(self) -> list[str]:
        group = self.share_group if self.shared else None
        return [subscription(Channel.EVENTS, self._prefix, group),
                subscription(Channel.STATUS, self._prefix)]  # retained: never shared

    def connect(self, timeout: float = 10.0) -> None:
        """Connect with a persistent session and start the network thread."""
        props = None
        if self.protocol == 5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._settings.session_expiry_s
            self.client.connect_async(self._url.host, self._url.port, keepalive=30,
                                      clean_start=False, properties=props)
        else:
            self.client.connect_async(self._url.host, self._url.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self.client.loop_stop()
            raise ConnectionError(f"no MQTT connection to {self._url.host}:{self._url.port}")

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode,
                    _p: Any = None) -> None:
        if rc.is_failure:
            log.error("MQTT connection refused: %s", rc)
            return
        self._generation += 1
        if self._generation > 1:
            self._loop.call_soon_threadsafe(self._on_reconnect)
        client.subscribe([(f, 1) for f in self.filters()])
        log.info("MQTT connected (generation %d), subscribing to %s", self._generation,
                 [f.replace(f"$share/{self.share_group}/", "$share/…/") for f in self.filters()])
        # Not waiting for the SUBACK here: a resumed session's backlog may arrive
        # first, and it must flow into the pipeline for the SUBACK to be read.
        self._connected.set()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: list[ReasonCode],
                      _p: Any = None) -> None:
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("subscription refused: %s", refused)
        else:
            log.info("subscribed (generation %d)", self._generation)
            self._loop.call_soon_threadsafe(self.subscribed.set)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any = None) -> None:
        self._connected.clear()
        with contextlib.suppress(RuntimeError):  # the loop may be gone at shutdown
            self._loop.call_soon_threadsafe(self.subscribed.clear)
        if not self._closing:
            log.warning("MQTT connection lost (%s); paho reconnects", rc)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self._closing:
            return  # not acknowledged: the broker delivers it to the next session
        size = len(msg.payload)
        if not self._backlog.take(size, lambda: self._closing):
            return
        handle = Handle(msg.mid, msg.qos, self._generation, size)
        received = Received(_topic_text(msg), bytes(msg.payload), handle)
        try:
            self._loop.call_soon_threadsafe(self._deliver, received)
        except RuntimeError:  # the loop is gone: the broker redelivers next session
            self._backlog.give(1, size)

    def ack(self, handles: list[Any]) -> int:
        """Acknowledge committed messages of the current connection; free their room."""
        sent = 0
        for h in handles:
            if h.qos > 0 and h.generation == self._generation:
                self.client.ack(h.mid, h.qos)
                sent += 1
        self._backlog.give(len(handles), sum(h.size for h in handles))
        return sent

    def stop_receiving(self) -> None:
        self._closing = True

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()


def share_group_for(password: str | None) -> str:
    """``ingest``, or with a broker password ``ingest-`` and 16 hex digits derived from it (pure).

    Mosquitto's acl_file never checks a subscription: any client of the broker that
    joins ingest's group is handed its share of the events, which its read rule then
    drops (tested: half of them with one intruder). So the name must be a secret,
    and the password the workers share is one that only they know."""
    if not password:
        return "ingest"
    digest = hashlib.sha256(b"parkbazaar share group\x00" + password.encode()).hexdigest()
    return f"ingest-{digest[:16]}"


def _topic_text(msg: mqtt.MQTTMessage) -> str:
    """The topic as text; one that is not UTF-8 (a broker should refuse it) becomes a
    bad topic to dead-letter, not an exception in paho's network thread."""
    try:
        return str(msg.topic)
    except UnicodeDecodeError:
        return "\ufffd(topic not UTF-8)"


def _path(p: Path | None) -> str | None:
    return None if p is None else str(p)
