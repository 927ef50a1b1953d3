"""A thin paho-mqtt 2.x client that publishes at QoS 1 and reports PUBACKs.

How this works: the client runs paho's own network thread (``loop_start``),
connects with a clean session (MQTT 3.1.1, which every broker we meet
speaks, amqtt included), sets the last will before connecting and reconnects
by itself with a bounded backoff (``reconnect_delay_set``). It tells its
owner three things, on the network thread: connected, disconnected, and
"message ``mid`` was acknowledged".

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
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from gateway import PublishError
from occupancy.config import MqttUrl

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Will:
    """The last will: published by the broker, retained, if the session dies."""

    topic: str
    payload: bytes


class PublisherOwner(Protocol):
    """What a publisher reports to; every method is called on the network thread."""

    def on_connected(self) -> None: ...

    def on_disconnected(self) -> None: ...

    def on_acked(self, mid: int, accepted: bool) -> None: ...


class Publisher(Protocol):
    """Publishing at QoS 1 with acknowledgement by callback (MQTT, or a fake)."""

    @property
    def connected(self) -> bool: ...

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
        reconnect_max_s: int = 10,
    ) -> None:
        self._mqtt = mqtt
        self._owner = owner
        self._keepalive = keepalive_s
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
            protocol=paho.MQTTv311,
        )
        if mqtt.username:
            self._client.username_pw_set(mqtt.username, mqtt.password)
        if mqtt.tls:
            self._client.tls_set()
        self._client.will_set(will.topic, will.payload, qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=max(1, reconnect_max_s))
        self._client.max_inflight_messages_set(0)  # the owner bounds what is in flight
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected())

    def start(self) -> None:
        """Connect in the background; paho keeps retrying until ``stop``."""
        try:
            self._client.connect_async(self._mqtt.host, self._mqtt.port, self._keepalive)
        except (OSError, ValueError) as exc:
            raise PublishError(f"cannot connect to {self._mqtt.host}:{self._mqtt.port}: {exc}") \
                from exc
        self._client.loop_start()

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
        self._client.disconnect()
        self._client.loop_stop()

    # ---- paho callbacks (network thread) -----------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker %s:%s refused the connection: %s",
                        self._mqtt.host, self._mqtt.port, reason)
            return
        dropped = client.drop_out_messages()
        log.info("connected to %s:%s (%d unacknowledged messages left to the owner)",
                 self._mqtt.host, self._mqtt.port, len(dropped))
        self._owner.on_connected()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        log.info("disconnected from %s:%s: %s", self._mqtt.host, self._mqtt.port, reason)
        self._owner.on_disconnected()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        self._owner.on_acked(mid, not reason.is_failure)
