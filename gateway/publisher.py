"""A thin paho-mqtt 2.x client that publishes at QoS 1 and reports PUBACKs.

How this works: the connection is ``occupancy.mqtt_client``'s, as for every
client of the broker: a ``Supervisor`` connects (TCP, TLS when configured,
username/password, the last will set before connecting), re-subscribes to
the gateway's ``cmd`` topic on every connect, and reconnects in an explicit
loop with ``Backoff`` (exponential, bounded, jittered); every attempt is
logged and counted (``reconnect_attempts``; accepted sessions in
``connects``), and a gateway never gives up. The session is clean (MQTT 5
clean start, MQTT 3.1.1 clean session): what must survive lives in the
gateway's disk outbox, not in the broker. This class tells its owner four
things, on paho's network thread: connected, disconnected, "message ``mid``
was acknowledged", and "a message arrived".

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
from collections.abc import Sequence
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from gateway import PublishError
from occupancy.backoff import Backoff
from occupancy.config import MqttUrl
from occupancy.mqtt_client import ClientSpec, MqttSetupError, Supervisor, TlsOptions, Will, set_will

__all__ = ["MqttPublisher", "Publisher", "PublisherOwner", "TlsOptions", "Will"]

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 16


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
        self._owner = owner
        # max_inflight 0: the owner bounds what is in flight
        spec = ClientSpec(mqtt, client_id, tls=tls, will=will, keepalive_s=keepalive_s,
                          max_inflight=0, subscriptions=tuple(subscriptions))
        try:
            self._link = Supervisor(
                spec, backoff=backoff or Backoff(min(0.5, reconnect_max_s), reconnect_max_s),
                on_connected=self._on_connected, on_disconnected=owner.on_disconnected,
                logger=log)
        except MqttSetupError as exc:
            raise PublishError(str(exc)) from exc
        self._client = self._link.client
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def connects(self) -> int:
        """Sessions the broker accepted (CONNACK success) since ``start``."""
        return self._link.connects

    @property
    def reconnect_attempts(self) -> int:
        """Waits before another connection attempt (refused, unreachable, lost)."""
        return self._link.retries

    def start(self) -> None:
        """Connect in the background; the supervisor keeps retrying until ``stop``."""
        self._link.start()

    def set_will(self, will: Will) -> None:
        """The will of the next connection (call while disconnected)."""
        set_will(self._client, will)

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
        self._link.stop()

    # ---- paho callbacks (network thread) -----------------------------------

    def _on_connected(self, client: paho.Client) -> None:
        dropped = client.drop_out_messages()
        if dropped:
            log.info("%d unacknowledged messages left to the owner to resend", len(dropped))
        self._owner.on_connected()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        # MQTT 5: "no matching subscribers" (16) means nobody will store the
        # event (ingest not subscribed yet, or a broker that lost a shared
        # subscription in a restart): not delivered, so the outbox keeps it.
        self._owner.on_acked(mid, not reason.is_failure and reason.value != NO_MATCHING_SUBSCRIBERS)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._owner.on_message(msg.topic, bytes(msg.payload))
