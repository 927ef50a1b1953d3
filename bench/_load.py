"""Load of the ingest benchmark: a fleet of simulated gateways speaking wire format v1.

Each gateway ``gw-NN`` owns one site ``site-NN`` of ``spaces`` bays (provisioned
through ``dashboard_api.provision`` from a generated site file) and numbers its
events with its own ``seq``. Payloads are built by ``occupancy.wire.encode_events``,
the gateway's own encoder; one paho client (MQTT 5, QoS 1) per publisher process
carries the messages of several gateways, each on its gateway's topic. PUBACK
reason codes are counted: "no matching subscribers" (16) means the broker had
nowhere to queue a message, and the run is void.

The publisher functions run in child processes (``multiprocessing``, spawn), so
the publisher never shares an interpreter with the measuring side.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from occupancy.ids import GatewayId, SiteId, SpaceId, SpaceRef
from occupancy.model import OccupancyEvent, Source, SpaceState
from occupancy.sitefile import SiteFile, parse_site_file
from occupancy.topics import Channel, topic
from occupancy.wire import EventBatch, encode_events

TENANT = "bench"
NO_MATCHING_SUBSCRIBERS = 16


@dataclass(frozen=True, slots=True)
class Fleet:
    """``gateways`` gateways with ``spaces`` bays each, publishing under ``prefix``."""

    gateways: int
    spaces: int
    prefix: str

    def gateway(self, g: int) -> str:
        return f"gw-{g:02d}"

    def site_file(self) -> SiteFile:
        sites = [{"id": f"site-{g:02d}", "kind": "parking", "name": f"Bench lot {g}",
                  "lat": 29.6, "lon": 52.5,
                  "zones": [{"id": "Z", "spaces": {"prefix": "S-", "count": self.spaces}}]}
                 for g in range(self.gateways)]
        gws = [{"id": self.gateway(g), "sites": [f"site-{g:02d}"]} for g in range(self.gateways)]
        return parse_site_file({"tenant": {"id": TENANT, "name": "Bench"}, "sites": sites,
                                "gateways": gws})

    def topic(self, g: int) -> str:
        return topic(TENANT, self.gateway(g), Channel.EVENTS, self.prefix)

    def event(self, g: int, seq: int, at: datetime) -> OccupancyEvent:
        """Event ``seq`` of gateway ``g``: bays in turn, each alternating occupied/free."""
        i = seq - 1
        space = SpaceRef(SiteId(f"site-{g:02d}"), SpaceId(f"S-{i % self.spaces + 1:03d}"))
        state = SpaceState.OCCUPIED if (i // self.spaces) % 2 == 0 else SpaceState.FREE
        return OccupancyEvent(seq=seq, space=space, state=state, at=at, source=Source.SENSOR,
                              confidence=0.97)

    def message(self, g: int, seqs: range, at: datetime, step: timedelta) -> tuple[str, bytes]:
        events = tuple(self.event(g, s, at + step * k) for k, s in enumerate(seqs))
        return self.topic(g), encode_events(EventBatch(GatewayId(self.gateway(g)), 1, events))


@dataclass(frozen=True, slots=True)
class Backlog:
    """``events`` events per gateway from ``first_seq``, ``per_message`` a message."""

    fleet: Fleet
    gateways: tuple[int, ...]
    first_seq: int
    events: int
    per_message: int
    t0: datetime

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Round robin over the gateways, each gateway's messages in seq order."""
        step = timedelta(milliseconds=1)
        for k in range(self.first_seq, self.first_seq + self.events, self.per_message):
            seqs = range(k, min(k + self.per_message, self.first_seq + self.events))
            at = self.t0 + step * (k - self.first_seq)
            for g in self.gateways:
                yield self.fleet.message(g, seqs, at, step)


class Publisher:
    """One paho client, MQTT 5, QoS 1; counts PUBACKs and their reason codes."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.acked = 0
        self.no_subscribers = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect(host, port, keepalive=60)
        self.client.loop_start()

    def _on_publish(self, _c: object, _u: object, _mid: int, rc: object, _p: object) -> None:
        with self._lock:
            self.acked += 1
            if getattr(rc, "value", 0) == NO_MATCHING_SUBSCRIBERS:
                self.no_subscribers += 1

    def publish(self, topic_: str, payload: bytes) -> None:
        self.client.publish(topic_, payload, qos=1)

    def finish(self, sent: int, timeout: float = 120.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while self.acked < sent and time.monotonic() < deadline:
            time.sleep(0.01)
        self.client.disconnect()
        self.client.loop_stop()
        return {"sent": sent, "acked": self.acked, "no_subscribers": self.no_subscribers}


def publish_backlog(host: str, port: int, backlog: Backlog, window: int = 2000) -> dict[str, int]:
    """Publish the whole backlog as fast as the broker acknowledges (a child process)."""
    pub = Publisher(host, port, f"bench-pub-{backlog.gateways[0]}-{backlog.first_seq}")
    sent = 0
    started = time.perf_counter()
    for t, payload in backlog.messages():
        while sent - pub.acked > window:  # keep paho's own queue short
            time.sleep(0.001)
        pub.publish(t, payload)
        sent += 1
    stats = pub.finish(sent)
    stats["seconds_ms"] = round((time.perf_counter() - started) * 1000)
    return stats


def publish_paced(host: str, port: int, fleet: Fleet, gateways: tuple[int, ...],
                  first_seq: int, rate: float, seconds: float) -> dict[str, int]:
    """One event a message at ``rate`` events/s for ``seconds``, ``at`` = now (a child process).

    The schedule is absolute (message k is due at start + k/rate), so a late
    tick catches up instead of lowering the rate.
    """
    pub = Publisher(host, port, f"bench-paced-{gateways[0]}")
    start = time.monotonic()
    sent = 0
    seqs = dict.fromkeys(gateways, first_seq)
    total = int(rate * seconds)
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while sent < due:
            g = gateways[sent % len(gateways)]
            t, payload = fleet.message(g, range(seqs[g], seqs[g] + 1), datetime.now(UTC),
                                       timedelta(0))
            pub.publish(t, payload)
            seqs[g] += 1
            sent += 1
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    return pub.finish(sent)
