"""The broker side of ingest: a paho-mqtt client with manual acknowledgement.

How this works: the connection is ``occupancy.mqtt_client``'s, as for every
client of the broker: a ``Supervisor`` connects with a persistent session
(fixed client id; MQTT 5 clean start off with a session expiry, or MQTT 3.1.1
clean session off), subscribes again on every connect, and reconnects in an
explicit loop with ``Backoff``, each retry logged and counted
(``parkbazaar_ingest_mqtt_retries_total``); after ``retry_max_s`` without a
connection it gives up and the service exits non-zero (``BrokerUnavailable``).

paho runs its network loop in its own thread. ``on_message`` takes room in a
``Backlog`` (at most ``queue_max_messages`` messages and ``queue_max_bytes``
of payload received but not yet acknowledged: when the database is slow, the
network thread blocks here, stops reading, and the broker holds the rest) and
hands the message to the asyncio loop. The byte bound matters for QoS 0, which
the broker's in-flight limit does not cover: a flood of 1 MiB messages while a
commit is slow would otherwise hold up to 10,000 MiB in ingest. The service
acknowledges (PUBACK) only after the transaction holding the message
committed; ``ack`` frees its room. Each accepted connection is a new
*generation*: messages of an earlier connection are not acknowledged on the
new one (their packet ids belong to the old one); the broker redelivers them
and the database ignores what it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from ingest import BrokerUnavailable, metrics
from ingest.plan import Received
from occupancy.backoff import Backoff
from occupancy.config import IngestSettings, MqttUrl
from occupancy.mqtt_client import ClientSpec, MqttSetupError, Supervisor, TlsOptions
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


def client_spec(url: MqttUrl, settings: IngestSettings, prefix: str) -> ClientSpec:
    """Ingest's connection: persistent session, manual ack, its TLS files, its filters."""
    s = settings
    tls = None
    if s.tls_ca or s.tls_cert:
        tls = TlsOptions(ca_file=s.tls_ca, cert_file=s.tls_cert, key_file=s.tls_key)
    spec = ClientSpec(url, s.client_id, protocol=s.protocol, tls=tls, clean_start=False,
                      session_expiry_s=s.session_expiry_s, manual_ack=True, max_inflight=100)
    return replace(spec, subscriptions=tuple(filters(spec.version, url, settings, prefix)))


def filters(version: int, url: MqttUrl, settings: IngestSettings, prefix: str) -> list[str]:
    """Events shared among the workers where the broker speaks MQTT 5 (unless the settings
    say otherwise); status never shared (retained messages are not delivered to shares)."""
    shared = settings.shared if settings.shared is not None else version == 5
    group = share_group(url, settings) if shared else None
    return [subscription(Channel.EVENTS, prefix, group), subscription(Channel.STATUS, prefix)]


def share_group(url: MqttUrl, settings: IngestSettings) -> str:
    """The group of ``$share/…`` the workers of one broker account share (a secret; below)."""
    return settings.share_group or share_group_for(url.password)


class IngestClient:
    """Subscribe, hand messages to asyncio, acknowledge after commit."""

    def __init__(self, url: MqttUrl, settings: IngestSettings, prefix: str,
                 loop: asyncio.AbstractEventLoop, deliver: Callable[[Received], None],
                 on_reconnect: Callable[[], None] = lambda: None,
                 on_retry: Callable[[], None] = lambda: None) -> None:
        self._loop, self._deliver, self._on_reconnect = loop, deliver, on_reconnect
        self._backlog = Backlog(settings.queue_max_messages, settings.queue_max_bytes)
        self._settings = settings
        self._generation = 0
        self._closing = False
        # set (on the loop) when the broker acknowledged this connection's subscriptions
        self.subscribed = asyncio.Event()
        # set (on the loop) when the supervisor gave up: the service stops with it
        self.gave_up = asyncio.Event()
        self.give_up_reason = ""
        try:
            self._link = Supervisor(
                client_spec(url, settings, prefix),
                backoff=Backoff(settings.reconnect_initial_s, settings.reconnect_max_s),
                give_up_after_s=settings.retry_max_s, on_connected=self._on_connected,
                on_disconnected=self._on_disconnected, on_retry=on_retry,
                on_give_up=self._on_give_up, logger=log)
        except MqttSetupError as exc:
            raise BrokerUnavailable(str(exc)) from exc
        self.client = self._link.client
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    @property
    def share_group(self) -> str:
        return share_group(self._link.spec.url, self._settings)

    def filters(self) -> list[str]:
        return list(self._link.spec.subscriptions)

    def connect(self, timeout: float = 10.0) -> None:
        """Start the supervisor; ``BrokerUnavailable`` without a connection in ``timeout``."""
        self._link.start()
        if not self._link.wait_connected(timeout):
            self._link.stop()
            raise BrokerUnavailable(f"no MQTT connection to {self._link.spec.where} "
                                    f"within {timeout:g}s")

    def _on_connected(self, client: mqtt.Client) -> None:
        self._generation += 1
        if self._generation > 1:
            self._loop.call_soon_threadsafe(self._on_reconnect)
        # The supervisor subscribed before calling this. Not waiting for the SUBACK
        # here: a resumed session's backlog may arrive first, and it must flow into
        # the pipeline for the SUBACK to be read.
        log.info("MQTT generation %d, subscribing to %s", self._generation,
                 [f.replace(f"$share/{self.share_group}/", "$share/…/") for f in self.filters()])

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: list[ReasonCode],
                      _p: Any = None) -> None:
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("subscription refused: %s", refused)
        else:
            log.info("subscribed (generation %d)", self._generation)
            self._loop.call_soon_threadsafe(self.subscribed.set)

    def _on_disconnected(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop may be gone at shutdown
            self._loop.call_soon_threadsafe(self.subscribed.clear)

    def _on_give_up(self, reason: str) -> None:
        self.give_up_reason = reason
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.gave_up.set)

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
        self._link.stop()


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

