"""Play an engine's steps through real gateway nodes, paced to ``speed``; carry out the faults.

How this works: one ``GatewayNode`` per simulated gateway (its outbox in
``state_dir``), connected straight to the broker or, when the scenario cuts
its uplink, through an ``UplinkProxy``. Step ``i`` is observed no earlier
than ``i · tick / speed`` real seconds after the start, so simulated time
never overtakes the wall clock (events are stamped in the past). Actions:
``uplink_cut``/``uplink_restore`` act on the proxy; ``duplicate_burst``
republishes the gateway's last ``count`` events with their own seqs through a
separate raw client; ``malformed`` publishes broken payloads on the gateway's
events topic. At the end every node is flushed (its outbox drained) and stopped.

LoRaWAN sensors: when the engine has some, a ``ChirpstackLink`` plays
ChirpStack on ``chirpstack`` (a broker URL; default the chain's) and each
step's ChirpStack events go through it and the gateways' receivers before
the step's events are stored; ``Engine.receive`` turns the readings into
the events of the LoRaWAN devices, stored by the same node as the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho

from gateway.node import GatewayNode, NodeStats
from gateway.outbox import EventDraft
from occupancy.config import MqttUrl
from occupancy.health import LorawanCounts
from occupancy.ids import GatewayId
from occupancy.model import OccupancyEvent
from occupancy.mqtt_client import ClientSpec, connect_once
from occupancy.topics import Channel, topic
from occupancy.wire import EventBatch, encode_events
from simulators.chirpstack_link import ChirpstackLink
from simulators.engine import Engine, Step
from simulators.faults import Action, GwKey
from simulators.netfault import UplinkProxy

log = logging.getLogger(__name__)
Progress = Callable[[Step], None]

# Broken payloads a faulty gateway might send, one reason of the wire format each.
MALFORMED_PAYLOADS: tuple[Callable[[str], bytes], ...] = (
    lambda gw: b'{"v": 1, "gateway": "' + gw.encode() + b'", "events": [',  # malformed_json
    lambda gw: b"[1, 2, 3]",  # not_an_object
    lambda gw: b'{"v": 9, "gateway": "' + gw.encode() + b'", "boot": 1, "events": []}',
    lambda gw: b'{"v": 1, "gateway": "' + gw.encode() + b'", "boot": 1}',  # missing_field
    lambda gw: b"\xff\xfe not utf-8",
)


@dataclass
class PlayResult:
    """What was sent, per gateway, and how the run went."""

    sent: dict[GwKey, list[OccupancyEvent]] = field(default_factory=dict)
    nodes: dict[GwKey, NodeStats] = field(default_factory=dict)
    skewed: dict[GwKey, set[int]] = field(default_factory=dict)  # seqs stamped by a wrong clock
    duplicates: int = 0
    malformed: int = 0
    real_s: float = 0.0
    lag_s: float = 0.0
    drained: bool = True
    lorawan: dict[GwKey, LorawanCounts] = field(default_factory=dict)  # the receivers' counts
    lorawan_missing: int = 0  # ChirpStack events not received in time

    @property
    def events(self) -> int:
        return sum(len(v) for v in self.sent.values())


def shift_for(engine_start: datetime, span: timedelta, speed: float, now: datetime) -> timedelta:
    """The shift that makes the simulated span end when the run does (whole seconds)."""
    end_real = now + span / speed
    return timedelta(seconds=round((end_real - (engine_start + span)).total_seconds()))


class Player:
    """See the module docstring."""

    def __init__(self, engine: Engine, *, mqtt: MqttUrl, prefix: str, state_dir: Path,
                 speed: float, progress: Progress | None = None, flush_s: float = 60.0,
                 logins: Mapping[GwKey, tuple[str, str]] | None = None,
                 chirpstack: MqttUrl | None = None, chirpstack_root: str = "") -> None:
        self.engine, self.mqtt, self.prefix = engine, mqtt, prefix
        self.logins = dict(logins or {})  # a gateway's own (username, secret); else the URL's
        self.state_dir, self.speed, self.progress = state_dir, speed, progress
        self.flush_s = flush_s
        self.nodes: dict[GwKey, GatewayNode] = {}
        self.proxies: dict[GwKey, UplinkProxy] = {}
        self.result = PlayResult()
        self._raw: dict[MqttUrl, paho.Client] = {}
        self.link = None if engine.lorawan is None else ChirpstackLink(
            engine, chirpstack or mqtt, root=chirpstack_root, tag=f"sim-{prefix.split('/')[0]}")

    async def run(self, stop: asyncio.Event | None = None) -> PlayResult:
        """Play every step, then wait for the outboxes to drain; the gateways stay online
        (their last will would turn every space ``unknown``) until ``close()``."""
        started = time.monotonic()
        await self._start()
        try:
            await self._loop(stop or asyncio.Event(), started)
            await self._drain()
        except BaseException:
            await self.close()
            raise
        self.result.real_s = time.monotonic() - started
        return self.result

    # ---- set-up and tear-down --------------------------------------------------

    async def _start(self) -> None:
        cut = {a for a in self._uplink_gateways()}
        for t in self.engine.targets:
            if t.gw in self.nodes:
                continue
            url = self._url(t.gw)
            if t.gw in cut:
                proxy = await UplinkProxy(self.mqtt.host, self.mqtt.port).start()
                self.proxies[t.gw] = proxy
                url = replace(url, host=proxy_host(), port=proxy.port)
            self.nodes[t.gw] = GatewayNode(
                t.tenant, t.gateway, self.state_dir / f"{t.tenant}--{t.gateway}.sqlite", url,
                self.prefix, client_id=f"sim-{self.prefix.split('/')[0]}-{t.tenant}-{t.gateway}",
                reconnect_max_s=2)
            self.result.sent[t.gw] = []
        await asyncio.gather(*(asyncio.to_thread(n.start) for n in self.nodes.values()))
        await asyncio.gather(*(asyncio.to_thread(n.wait_connected, 15) for n in self.nodes.values()))
        if self.link is not None:
            await asyncio.to_thread(self.link.start)

    def _url(self, gw: GwKey) -> MqttUrl:
        login = self.logins.get(gw)
        return self.mqtt if login is None else replace(self.mqtt, username=login[0], password=login[1])

    def _uplink_gateways(self) -> set[GwKey]:
        out = set()
        for f in self.engine.scenario.faults:
            if getattr(f, "kind", "") == "uplink_loss":
                out |= {t.gw for t in self.engine.targets if t.gateway == getattr(f, "gateway", "")}
        return out

    async def _drain(self) -> None:
        for proxy in self.proxies.values():
            proxy.restore()
        flushed = await asyncio.gather(*(asyncio.to_thread(n.flush, self.flush_s)
                                         for n in self.nodes.values()))
        self.result.drained = all(flushed)

    async def close(self) -> None:
        """Stop every gateway (offline status), the proxies and the raw client."""
        for proxy in self.proxies.values():
            proxy.restore()
        await asyncio.gather(*(asyncio.to_thread(n.stop) for n in self.nodes.values()))
        self.result.nodes = {k: n.stats() for k, n in self.nodes.items()}
        for proxy in self.proxies.values():
            await proxy.stop()
        for raw in self._raw.values():
            raw.disconnect()
            raw.loop_stop()
        if self.link is not None:
            self.result.lorawan = self.link.counts()
            self.result.lorawan_missing = self.link.missing
            await asyncio.to_thread(self.link.stop)

    # ---- the paced loop -----------------------------------------------------------

    async def _loop(self, stop: asyncio.Event, started: float) -> None:
        tick_real = self.engine.tick.total_seconds() / self.speed
        for step in self.engine.run():
            due = started + step.index * tick_real
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, due - time.monotonic()))
            if stop.is_set():
                return
            self.result.lag_s = max(self.result.lag_s, time.monotonic() - due)
            await self._observe(step)
            for action in step.actions:
                await self._act(action)
            if self.progress is not None:
                self.progress(step)

    async def _observe(self, step: Step) -> None:
        lorawan: dict[GwKey, list[EventDraft]] = {}
        if self.link is not None:
            readings = await asyncio.to_thread(self.link.exchange, step)
            lorawan = self.engine.receive(step, readings)

        async def one(gw: GwKey) -> None:
            drafts = step.events.get(gw, []) + lorawan.get(gw, [])
            if drafts and gw in step.skew:
                drafts = skewed(drafts, step.skew[gw], utc_now())
            if drafts:
                events = await asyncio.to_thread(self.nodes[gw].observe_many, drafts)
                self.result.sent[gw].extend(events)
                if gw in step.skew:
                    self.result.skewed.setdefault(gw, set()).update(e.seq for e in events)

        await asyncio.gather(*(one(gw) for gw in self.nodes))

    async def _act(self, action: Action) -> None:
        log.info("fault %s on %s at %s", action.kind, action.gateway, action.at)
        if action.kind == "uplink_cut":
            self.proxies[action.gateway].cut()
        elif action.kind == "uplink_restore":
            self.proxies[action.gateway].restore()
        elif action.kind == "duplicate_burst":
            await asyncio.to_thread(self._duplicates, action)
        elif action.kind == "malformed":
            await asyncio.to_thread(self._malformed, action)

    # ---- raw publishing (faults) ------------------------------------------------------

    def _client(self, gw: GwKey) -> paho.Client:
        """A raw client logged in as the gateway (one per login: a broker's ACL may be per gateway)."""
        url = self._url(gw)
        if url not in self._raw:
            client_id = f"sim-raw-{self.prefix.split('/')[0]}-{len(self._raw)}"
            self._raw[url] = connect_once(ClientSpec(url, client_id, max_inflight=100))
        return self._raw[url]

    def _publish(self, gw: GwKey, payloads: list[bytes]) -> None:
        client = self._client(gw)
        events_topic = topic(gw[0], gw[1], Channel.EVENTS, self.prefix)
        infos = [client.publish(events_topic, p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(10)

    def _duplicates(self, action: Action) -> None:
        events = self.result.sent[action.gateway][-action.count:]
        boot = self.nodes[action.gateway].boot
        payloads = [encode_events(EventBatch(GatewayId(action.gateway[1]), boot,
                                             tuple(events[i:i + 100])))
                    for i in range(0, len(events), 100)]
        self._publish(action.gateway, payloads)
        self.result.duplicates += len(events)

    def _malformed(self, action: Action) -> None:
        payloads = [MALFORMED_PAYLOADS[i % len(MALFORMED_PAYLOADS)](action.gateway[1])
                    for i in range(action.count)]
        self._publish(action.gateway, payloads)
        self.result.malformed += len(payloads)


def skewed(drafts: list[EventDraft], offset_s: int, now: datetime) -> list[EventDraft]:
    """Drafts stamped by a clock ``offset_s`` off: ahead of the real clock, or behind their time."""
    delta = timedelta(seconds=offset_s)
    return [replace(d, at=(max(d.at, now) if offset_s > 0 else d.at) + delta) for d in drafts]


def proxy_host() -> str:
    return "127.0.0.1"


def utc_now() -> datetime:
    return datetime.now(UTC)
