"""A thin paho-mqtt 2.x client that publishes at QoS 1 and reports PUBACKs.

How this works: a **supervisor thread** of ours owns the connection. It
connects (TCP, TLS when configured, username/password), starts paho's
network thread for that one connection (``loop_start``; paho's own
reconnecting is off), and waits until the connection is lost or ``stop`` is
asked. Then it waits ``Backoff.delay`` (exponential, bounded, jittered) and
connects again. Every attempt is logged and counted (``reconnect_attempts``;
successful sessions in ``connects``): no retry hides inside paho.

The client connects with a clean session (MQTT 3.1.1, which every broker we
meet speaks), with the last will set before connecting, and subscribes to
its ``subscriptions`` (the gateway's ``cmd`` topic) on every connect. It
tells its owner four things, on paho's network thread: connected,
disconnected, "message ``mid`` was acknowledged", and "a message arrived".

Resending is the owner's job, not paho's: on every (re)connect the client
drops the messages paho still holds unacknowledged (``drop_out_messages``)
before telling the owner, who republishes them from its disk outbox. So one
place decides what is resent, and paho's memory never holds a second copy of
a backlog that lives on disk.

Callbacks run on the network thread while paho holds its own locks: an owner
must not block in them (in particular, not wait for a lock that is held
around ``publish``); recording the fact and waking another thread is right.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from gateway import PublishError
from gateway.backoff import Backoff
from occupancy.config import MqttUrl

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 16


@dataclass(frozen=True, slots=True)
class Will:
    """The last will: published by the broker, retained, if the session dies."""

    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS to the broker: the CA to trust and, for mutual TLS, a client certificate.

    With no ``ca_file`` the system's trust store is used. ``insecure`` skips
    the host name check (a broker reached by IP with a name-only certificate);
    the chain is still verified.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


class PublisherOwner(Protocol):
    """What a publisher reports to; every method is called on the network thread."""

    def on_connected(self) -> None: ...

    def on_disconnected(self) -> None: ...

    def on_acked(self, mid: int, accepted: bool) -> None: ...

    def on_message(self, topic: str, payload: bytes) -> None: ...


class Publisher(Protocol):
    """Publishing at QoS 1 with acknowledgement by callback (MQTT, or a fake)."""

    @property
    def connected(self) -> bool: ...

    @property
    def connects(self) -> int: ...

    @property
    def reconnect_attempts(self) -> int: ...

    def start(self) -> None: ...

    def set_will(self, will: Will) -> None: ...

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int: ...

    def publish_wait(self, topic: str, payload: bytes, *, retain: bool, timeout: float) -> bool: ...

    def stop(self) -> None: ...


class MqttPublisher:
    """paho-mqtt behind the ``Publisher`` interface."""

    def __init__(
        self,
        mqtt: MqttUrl,
        *,
        client_id: str,
        will: Will,
        owner: PublisherOwner,
        keepalive_s: int = 30,
        reconnect_max_s: float = 10,
        backoff: Backoff | None = None,
        tls: TlsOptions | None = None,
        subscriptions: Sequence[str] = (),
    ) -> None:
        self._mqtt = mqtt
        self._owner = owner
        self._keepalive = keepalive_s
        self._backoff = backoff or Backoff(initial_s=min(0.5, reconnect_max_s), max_s=reconnect_max_s)
        self._subscriptions = tuple(subscriptions)
        if mqtt.protocol == 5:  # MQTT 5 has clean_start at connect, not clean_session
            self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                       protocol=paho.MQTTv5, reconnect_on_failure=False)
        else:
            self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                       clean_session=True, protocol=paho.MQTTv311,
                                       reconnect_on_failure=False)
        if mqtt.username:
            self._client.username_pw_set(mqtt.username, mqtt.password)
        self._tls = (tls or TlsOptions()) if tls is not None or mqtt.tls else None
        if self._tls is not None:
            self._set_tls(self._tls)
        self._client.will_set(will.topic, will.payload, qos=1, retain=True)
        self._client.max_inflight_messages_set(0)  # the owner bounds what is in flight
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_log = self._on_log
        self._accepted = False  # this connection got a CONNACK, success or refusal
        self._socket_error: str | None = None  # paho's last word on a broken socket
        self._stopping = threading.Event()
        self._lost = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._attempt = 0
        self._connects = 0
        self._reconnect_attempts = 0

    def _set_tls(self, tls: TlsOptions) -> None:
        try:
            self._client.tls_set(
                ca_certs=None if tls.ca_file is None else str(tls.ca_file),
                certfile=None if tls.cert_file is None else str(tls.cert_file),
                keyfile=None if tls.key_file is None else str(tls.key_file),
            )
            self._client.tls_insecure_set(tls.insecure)
        except (OSError, ValueError) as exc:
            raise PublishError(f"TLS setup failed: {exc}") from exc

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected())

    @property
    def connects(self) -> int:
        """Sessions the broker accepted (CONNACK success) since ``start``."""
        return self._connects

    @property
    def reconnect_attempts(self) -> int:
        """Connection attempts that failed (refused, unreachable, lost before CONNACK)."""
        return self._reconnect_attempts

    def start(self) -> None:
        """Connect in the background; the supervisor keeps retrying until ``stop``."""
        self._supervisor = threading.Thread(target=self._supervise, daemon=True,
                                             name=f"mqtt-supervisor-{self._mqtt.host}")
        self._supervisor.start()

    def set_will(self, will: Will) -> None:
        """The will of the next connection (call while disconnected)."""
        self._client.will_set(will.topic, will.payload, qos=1, retain=True)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Send at QoS 1 and return the message id that ``on_acked`` will name.

        Without a connection the message stays with paho only until the next
        connect drops it: the owner resends from its store.
        """
        try:
            info = self._client.publish(topic, payload, qos=1, retain=retain)
        except ValueError as exc:
            raise PublishError(f"publish to {topic} refused: {exc}") from exc
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise PublishError(f"publish to {topic} refused: {paho.error_string(info.rc)}")
        return int(info.mid)

    def publish_wait(self, topic: str, payload: bytes, *, retain: bool, timeout: float) -> bool:
        """Publish and wait for the PUBACK; False if not connected or too slow."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return bool(info.is_published())

    def stop(self) -> None:
        """Disconnect cleanly (the broker then does not send the will)."""
        self._stopping.set()
        if self.connected:
            self._client.disconnect()
        self._lost.set()
        if self._supervisor is not None:
            self._supervisor.join(10)

    # ---- supervisor thread ----------------------------------------------------

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self._lost.clear()
            if self._connect():
                self._client.loop_start()
                while not self._lost.wait(1.0) and self._network_alive():
                    pass
                self._client.loop_stop()
            if self._stopping.is_set():
                break
            self._wait_before_retry()

    def _network_alive(self) -> bool:
        """paho's thread for this connection still runs (a safety net: a lost
        connection normally arrives as ``on_disconnect``)."""
        return getattr(self._client, "_thread", None) is not None

    def _connect(self) -> bool:
        self._accepted, self._socket_error = False, None
        try:
            if self._mqtt.protocol == 5:
                self._client.connect(self._mqtt.host, self._mqtt.port, self._keepalive,
                                     clean_start=True)
            else:
                self._client.connect(self._mqtt.host, self._mqtt.port, self._keepalive)
        except (OSError, ValueError) as exc:  # refused, unreachable, DNS, TLS handshake
            log.warning("cannot connect to %s:%s: %s", self._mqtt.host, self._mqtt.port, exc)
            return False
        return True

    def _wait_before_retry(self) -> None:
        delay = self._backoff.delay(self._attempt, random.random())
        self._attempt += 1
        self._reconnect_attempts += 1
        log.info("reconnecting to %s:%s in %.2fs (attempt %d)",
                 self._mqtt.host, self._mqtt.port, delay, self._attempt)
        self._stopping.wait(delay)

    # ---- paho callbacks (network thread) -----------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        self._accepted = True
        if reason.is_failure:
            log.warning("broker %s:%s refused the connection: %s",
                        self._mqtt.host, self._mqtt.port, reason)
            self._lost.set()
            return
        self._attempt = 0
        self._connects += 1
        dropped = client.drop_out_messages()
        log.info("connected to %s:%s (%d unacknowledged messages left to the owner)",
                 self._mqtt.host, self._mqtt.port, len(dropped))
        for flt in self._subscriptions:
            client.subscribe(flt, qos=1)
        self._owner.on_connected()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if self._accepted:
            log.info("disconnected from %s:%s: %s", self._mqtt.host, self._mqtt.port, reason)
        else:
            log.warning("broker %s:%s closed the connection before accepting it: %s",
                        self._mqtt.host, self._mqtt.port,
                        closed_unaccepted(self._socket_error or str(reason), self._tls))
        self._owner.on_disconnected()
        self._lost.set()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        # MQTT 5: "no matching subscribers" (16) means nobody will store the
        # event (ingest not subscribed yet, or a broker that lost a shared
        # subscription in a restart): not delivered, so the outbox keeps it.
        self._owner.on_acked(mid, not reason.is_failure and reason.value != NO_MATCHING_SUBSCRIBERS)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._owner.on_message(msg.topic, bytes(msg.payload))

    def _on_log(self, client: paho.Client, userdata: Any, level: int, buf: str) -> None:
        # why a socket broke is told only here (on_disconnect just says "Unspecified error")
        if level == paho.MQTT_LOG_ERR and self._socket_error is None:
            self._socket_error = buf


def closed_unaccepted(detail: str, tls: TlsOptions | None) -> str:
    """Why a broker closed a connection before its CONNACK, as far as the client can tell.

    With TLS 1.3 a broker that requires a client certificate lets the
    handshake finish and only then drops the connection: its "certificate
    required" alert is often lost to the client's CONNECT failing on the
    closed socket, so the client may see just an EOF. Say what to check.
    """
    if tls is None or tls.cert_file is not None:
        return detail
    return (f"{detail}; TLS without a client certificate: if the broker requires one "
            "(require_certificate), configure a certificate and key")
