"""The ChirpStack side of a scenario run (I/O): publish the fleet's events, receive them as gateways do.

How this works: one raw paho client plays ChirpStack's MQTT integration. It
publishes each step's ``Publication``\\s (``simulators.lorawan``), QoS 1 and
in order, on ChirpStack's event topics of the ChirpStack broker (under
``root`` when one is given, as a ChirpStack ``event_topic`` template can
say). Each simulated gateway with LoRaWAN devices listens as a real one
does: a ``Receiver`` (``occupancy.lorawan.receiver``, the core of the
gateway's ``chirpstack`` adapter) with the gateway's bindings (DevEUI →
device, space, model) and applications, behind a subscribing client of its
own whose paho thread only queues what arrives.

``exchange(step)`` publishes the step's events, waits until every gateway
has the messages of its applications (``wait_s`` at most, then it logs
what is missing and goes on: what comes later is read with the next step),
passes them through the gateway's receiver on the caller's thread, with
the step's stamped time as the gateway's clock, and returns the readings in
the order they arrived. The engine turns them into events
(``Engine.receive``); the receivers' counts (duplicates, late frames,
fCnt resets, joins, unknown DevEUIs, ...) are what the run reports.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import paho.mqtt.client as paho

from occupancy.config import MqttUrl
from occupancy.health import LorawanCounts
from occupancy.ids import DeviceId, SiteId, SpaceId, SpaceRef
from occupancy.lorawan.receiver import Binding, Receiver, SensorReading
from occupancy.mqtt_client import ClientSpec, build_client, connect, connect_once
from simulators.engine import Engine, Step
from simulators.faults import GwKey
from simulators.lorawan import LoraDevice

log = logging.getLogger(__name__)


@dataclass
class _Listener:
    """One gateway's ChirpStack receiver and its subscription."""

    receiver: Receiver
    applications: frozenset[str]
    client: paho.Client | None = None
    inbox: queue.SimpleQueue[tuple[str, bytes]] = field(default_factory=queue.SimpleQueue)


def receivers_for(engine: Engine, root: str = "") -> dict[GwKey, Receiver]:
    """A ``Receiver`` per gateway, bound to that gateway's LoRaWAN devices and applications."""
    by_gw: dict[GwKey, list[LoraDevice]] = defaultdict(list)
    for d in engine.lora.values():
        by_gw[d.gateway].append(d)
    prefix = f"{root}/application" if root else "application"
    return {gw: Receiver([binding(d) for d in devices], prefix=prefix,
                         applications={d.application_id for d in devices})
            for gw, devices in by_gw.items()}


def binding(d: LoraDevice) -> Binding:
    """What a gateway's site file says of a LoRaWAN device, as the receiver takes it."""
    return Binding(d.dev_eui, DeviceId(d.device), SpaceRef(SiteId(d.space[1]), SpaceId(d.space[2])),
                   model=d.model)


class ChirpstackLink:
    """See the module docstring."""

    def __init__(self, engine: Engine, url: MqttUrl, *, root: str = "", tag: str = "sim",
                 wait_s: float = 10.0) -> None:
        self.engine, self.url, self.root, self.tag, self.wait_s = engine, url, root, tag, wait_s
        self.listeners = {gw: _Listener(r, frozenset(d.application_id for d in engine.lora.values()
                                                     if d.gateway == gw))
                          for gw, r in receivers_for(engine, root).items()}
        self.published = 0
        self.missing = 0  # messages not there within wait_s (read with a later step)
        self._publisher: paho.Client | None = None

    def start(self) -> None:
        """Connect the publisher and every gateway's subscriber, subscribed (blocking)."""
        self._publisher = connect_once(ClientSpec(self.url, f"{self.tag}-chirpstack", max_inflight=100))
        for n, (gw, listener) in enumerate(self.listeners.items()):
            spec = ClientSpec(self.url, f"{self.tag}-lorawan-{n}")
            client = build_client(spec)
            inbox, subscribed = listener.inbox, threading.Event()
            client.on_message = lambda _c, _u, m, q=inbox: q.put((m.topic, bytes(m.payload)))
            client.on_subscribe = lambda *_a, ev=subscribed: ev.set()
            connect(client, spec)
            client.loop_start()
            listener.client = client
            client.subscribe([(f, 1) for f in listener.receiver.subscriptions()])
            if not subscribed.wait(15):
                raise ConnectionError(f"gateway {gw[1]}: no subscription at ChirpStack's broker "
                                      f"{self.url.addresses[0]} within 15 s")

    def exchange(self, step: Step) -> list[SensorReading]:
        """Publish the step's events; what the gateways' receivers made of them, in arrival order."""
        if self._publisher is None:
            raise RuntimeError("ChirpstackLink.exchange before start")
        infos = [self._publisher.publish(p.topic(self.root), p.payload(), qos=1)
                 for p in step.publications]
        for info in infos:
            info.wait_for_publish(self.wait_s)
        self.published += len(infos)
        deadline = time.monotonic() + self.wait_s
        out: list[SensorReading] = []
        for gw, listener in self.listeners.items():
            expected = sum(1 for p in step.publications if p.application_id in listener.applications)
            got = 0
            while True:
                try:
                    topic, payload = listener.inbox.get(
                        timeout=max(0.0, deadline - time.monotonic()) if got < expected else 0)
                except queue.Empty:
                    break
                got += 1
                out += listener.receiver.receive(topic, payload, step.at)
            if got < expected:
                self.missing += expected - got
                log.warning("gateway %s: %d of %d ChirpStack events not received within %.0f s",
                            gw[1], expected - got, expected, self.wait_s)
        return out

    def counts(self) -> dict[GwKey, LorawanCounts]:
        return {gw: listener.receiver.counts() for gw, listener in self.listeners.items()}

    def stop(self) -> None:
        for listener in self.listeners.values():
            if listener.client is not None:
                listener.client.disconnect()
                listener.client.loop_stop()
                listener.client = None
        if self._publisher is not None:
            self._publisher.disconnect()
            self._publisher.loop_stop()
            self._publisher = None
