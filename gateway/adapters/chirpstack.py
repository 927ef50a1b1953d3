"""The ``chirpstack`` push source: LoRaWAN sensors through ChirpStack v4's MQTT integration.

How this works (the thin shell around ``occupancy.lorawan.receiver``). A
``Supervisor`` (``occupancy/mqtt_client.py``) keeps one connection to
ChirpStack's broker: a persistent session (clean start off, a session
expiry), subscribed at QoS 1 to the events of the configured applications
again on every connect, reconnecting with the connection's bounded backoff
for as long as the gateway runs. paho's network thread only hands each
message to the event loop; there ``run`` passes it to the ``Receiver``
(dedup, sessions, decoding; stamped with the service's clock where the
network server gave no time) and hands the readings to the service's sink.

paho acknowledges a QoS 1 message (PUBACK) once it reached this process; the
readings it yields are stepped through the state machines at once and their
events stored by the service's writer within milliseconds. A SIGTERM stores
them (the service's shutdown); a crash in that window loses them, and the
sensor's next uplink or heartbeat restates the bay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho

from gateway.adapters import AdapterError, PushedSensor, ReadingSink
from occupancy.health import LorawanCounts
from occupancy.ids import DeviceId
from occupancy.lorawan.receiver import Binding, Receiver
from occupancy.mqtt_client import ClientSpec, MqttSetupError, Supervisor

if TYPE_CHECKING:
    from gateway.config import ChirpstackDevice, GatewayConfig

log = logging.getLogger(__name__)

def bindings(device: ChirpstackDevice) -> list[Binding]:
    """The receiver's bindings of a config entry's sensors (its own and its site file's)."""
    return [Binding(s.dev_eui, DeviceId(s.device_id), s.ref(), s.model, s.occupied_path)
            for s in device.all_sensors()]


def client_spec(config: GatewayConfig, device: ChirpstackDevice, subscriptions: Sequence[str]) -> ClientSpec:
    """How the gateway connects to ChirpStack's broker: a persistent session, QoS 1 subscriptions."""
    b = device.broker
    return ClientSpec(
        config.mqtt(b), b.client_id or f"parkbazaar-{config.tenant}-{config.gateway}-{device.id}"[:64],
        tls=config.tls(b), clean_start=device.session_expiry_s == 0,
        session_expiry_s=device.session_expiry_s, keepalive_s=b.keepalive_s,
        subscriptions=tuple(subscriptions))


class ChirpstackSource:
    """One ChirpStack connection and the sensors read through it."""

    kind = "chirpstack"

    def __init__(self, config: GatewayConfig, device: ChirpstackDevice) -> None:
        self.device = DeviceId(device.id)
        self.receiver = Receiver(bindings(device), prefix=device.topic_prefix,
                                 applications=device.application_ids(), logger=log)
        self._spec = client_spec(config, device, self.receiver.subscriptions())
        self._backoff = config.backoff(device.broker)
        self._link: Supervisor | None = None

    def sensors(self) -> list[PushedSensor]:
        return [PushedSensor(b.device, "lorawan", (b.space,)) for b in self.receiver.bindings.values()]

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.connected

    @property
    def retries(self) -> int:
        return 0 if self._link is None else self._link.retries

    def counts(self) -> LorawanCounts:
        return self.receiver.counts()

    async def run(self, sink: ReadingSink, clock: Callable[[], datetime]) -> None:
        """Receive until cancelled; the connection is closed on the way out."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        try:
            link = Supervisor(self._spec, backoff=self._backoff, on_connected=_nothing, logger=log)
        except MqttSetupError as exc:
            raise AdapterError(f"chirpstack {self.device}: {exc}") from exc
        link.client.on_message = _handing_to(loop, inbox)
        self._link = link
        link.start()
        try:
            while True:
                topic, payload = await inbox.get()
                readings = self.receiver.receive(topic, payload, clock())
                if readings:
                    sink(readings)
        finally:
            await asyncio.to_thread(link.stop)



def _handing_to(loop: asyncio.AbstractEventLoop,
                inbox: asyncio.Queue[tuple[str, bytes]]) -> Callable[..., None]:
    """paho's ``on_message``: hand the message to the event loop, never block paho's thread
    (the receiver takes microseconds a message, so the inbox stays short)."""

    def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the gateway is stopping
            loop.call_soon_threadsafe(inbox.put_nowait, (msg.topic, bytes(msg.payload)))

    return on_message


def _nothing(_client: paho.Client) -> None:
    return None
