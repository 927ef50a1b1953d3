"""A gateway node: observations in, acknowledged MQTT messages out, via a disk outbox.

How this works. Two threads besides the caller's:

- paho's **network thread** (inside ``MqttPublisher``) only records facts:
  on connect it bumps the connection generation, publishes the birth
  (retained) and wakes the sender; on PUBACK it queues ``(mid, accepted)``
  and wakes the sender; on disconnect it clears ``connected``. It never
  touches the outbox and never waits for a lock of ours (it runs with paho's
  locks held).
- the **sender thread** owns the in-flight table (``mid -> seqs``) and the
  send cursor. Each round it applies the queued PUBACKs (one ``remove``
  transaction for all of them), and, while connected and fewer than
  ``max_inflight`` messages await a PUBACK, publishes the next pending events
  after the cursor, oldest first, up to ``batch_max`` events and
  ``MAX_PAYLOAD_BYTES`` a message. When it sees a new connection generation
  it forgets the in-flight table and moves the cursor back to the start: what
  was in flight is published again from the outbox, with the same seqs.

The caller's thread runs ``observe`` (an outbox append, one fsync, then a
wake-up) and ``flush``/``stop``. Events are deleted from the outbox only
after their PUBACK; what is unsent at ``stop`` or at a crash is sent by the
next start. A resend may duplicate an event the broker already had (its
PUBACK was lost): ``(gateway, seq)`` makes that harmless downstream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway import GatewayError
from gateway.outbox import EventDraft, Outbox
from gateway.publisher import MqttPublisher, Publisher, PublisherOwner
from occupancy.backoff import Backoff
from occupancy.config import MqttUrl
from occupancy.ids import DeviceId, GatewayId, SpaceRef, TenantId
from occupancy.model import EventKind, OccupancyEvent, Source, SpaceState
from occupancy.mqtt_client import TlsOptions, Will
from occupancy.topics import ROOT, Channel, topic
from occupancy.wire import MAX_PAYLOAD_BYTES, EventBatch, Status, encode_events, encode_status

log = logging.getLogger(__name__)

REJECTED_RETRY_S = 1.0  # pause before resending what the broker did not accept

PublisherFactory = Callable[[Will, PublisherOwner], Publisher]


@dataclass(frozen=True, slots=True)
class NodeStats:
    """A snapshot of the node's counters (events, unless named otherwise)."""

    boot: int
    connected: bool
    sent: int
    acked: int
    resent: int
    rejected: int
    messages: int
    in_flight_messages: int
    depth: int
    dropped_heartbeats: int = 0
    dropped_changes: int = 0
    connects: int = 0
    reconnect_attempts: int = 0


def encode_batches(
    gateway: GatewayId, boot: int, events: Sequence[OccupancyEvent],
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> list[tuple[bytes, tuple[int, ...]]]:
    """Payloads of at most ``max_bytes`` for ``events`` in order, with their seqs."""
    payload = encode_events(EventBatch(gateway, boot, tuple(events)))
    if len(payload) <= max_bytes or len(events) == 1:
        return [(payload, tuple(e.seq for e in events))]
    half = len(events) // 2
    return (encode_batches(gateway, boot, events[:half], max_bytes)
            + encode_batches(gateway, boot, events[half:], max_bytes))


class GatewayNode:
    """One gateway: ``start``, ``observe`` … , ``stop``. See the module docstring."""

    def __init__(
        self,
        tenant: str,
        gateway: str,
        outbox_path: Path | str,
        mqtt: MqttUrl,
        prefix: str = ROOT,
        *,
        client_id: str | None = None,
        batch_max: int = 200,
        max_inflight: int = 16,
        reconnect_max_s: float = 10,
        publisher_factory: PublisherFactory | None = None,
        outbox_limit: int | None = None,
        tls: TlsOptions | None = None,
        backoff: Backoff | None = None,
        keepalive_s: int = 30,
        on_command: Callable[[bytes], None] | None = None,
    ) -> None:
        self.tenant = TenantId(tenant)
        self.gateway = GatewayId(gateway)
        self._mqtt = mqtt
        self._client_id = client_id or f"parkbazaar-gw-{tenant}-{gateway}"
        self._events_topic = topic(tenant, gateway, Channel.EVENTS, prefix)
        self._status_topic = topic(tenant, gateway, Channel.STATUS, prefix)
        self._health_topic = topic(tenant, gateway, Channel.HEALTH, prefix)
        self._cmd_topic = topic(tenant, gateway, Channel.CMD, prefix)
        self._tls, self._backoff, self._keepalive = tls, backoff, keepalive_s
        self._on_command = on_command
        self._batch_max = batch_max
        self._max_inflight = max_inflight
        self._reconnect_max_s = reconnect_max_s
        self._factory = publisher_factory or self._mqtt_publisher
        self._outbox = Outbox(outbox_path, limit=outbox_limit)
        self._boot = 0
        self._publisher: Publisher | None = None
        self._thread: threading.Thread | None = None
        # shared between threads: set by one writer, read by the sender
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._online = threading.Event()
        self._acks: deque[tuple[int, bool]] = deque()
        self._generation = 0
        self._drained = threading.Condition()
        # owned by the sender thread
        self._in_flight: dict[int, tuple[int, ...]] = {}
        self._cursor = 0
        self._seen_generation = 0
        self._high_water = 0
        self._sent = self._acked = self._resent = self._rejected = self._messages = 0
        self._hold_until = 0.0  # after a message the broker did not accept
        self._refused_streak = 0  # messages refused since the last accepted one (logged once)
        self._final: NodeStats | None = None  # the counters at stop, once the outbox is closed

    # ---- public surface ----------------------------------------------------

    @property
    def boot(self) -> int:
        return self._boot

    def start(self) -> int:
        """Count a new session (boot), connect in the background, start sending."""
        self._boot = self._outbox.open_session()
        self._publisher = self._factory(self._will(), _Owner(self))
        self._thread = threading.Thread(
            target=self._run, name=f"gateway-sender-{self.gateway}", daemon=True)
        self._thread.start()
        self._publisher.start()
        log.info("gateway %s/%s boot %d started (outbox %d pending)",
                 self.tenant, self.gateway, self._boot, self._outbox.depth())
        return self._boot

    def wait_connected(self, timeout: float) -> bool:
        return self._online.wait(timeout)

    def observe(
        self, space: SpaceRef, state: SpaceState, at: datetime, source: Source,
        confidence: float | None = None, device: DeviceId | None = None,
        kind: EventKind = EventKind.CHANGE,
    ) -> OccupancyEvent:
        """Store one observation durably (it gets its seq) and wake the sender."""
        draft = EventDraft(space, state, at, source, confidence, device, kind)
        return self.observe_many([draft])[0]

    def observe_many(self, drafts: Iterable[EventDraft]) -> list[OccupancyEvent]:
        """Store many observations in one transaction (one fsync) and wake the sender."""
        events = self._outbox.append(drafts)
        self._wake.set()
        return events

    def flush(self, timeout: float) -> bool:
        """Wait until every stored event was acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._drained:
            while self._outbox.depth() > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._drained.wait(min(remaining, 0.1))
        return True

    def stop(self, flush_timeout: float = 2.0) -> None:
        """Flush briefly, publish the offline status, disconnect; unsent events stay."""
        if self._publisher is None or self._thread is None:
            self._outbox.close()
            return
        if self._publisher.connected:
            self.flush(flush_timeout)
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        if self._publisher.connected:
            offline = encode_status(Status(online=False, boot=self._boot, at=_now()))
            self._publisher.publish_wait(self._status_topic, offline, retain=True, timeout=2.0)
        self._publisher.stop()
        self._apply_acks()
        self._final = self.stats()
        self._outbox.close()
        log.info("gateway %s/%s boot %d stopped: %s", self.tenant, self.gateway, self._boot,
                 self._final)

    @property
    def outbox_limit(self) -> int | None:
        return self._outbox.limit

    def publish_health(self, payload: bytes) -> bool:
        """Publish a ``health`` message (QoS 1, not retained, not stored): False when offline."""
        publisher = self._publisher
        if publisher is None or not self._online.is_set():
            return False
        publisher.publish(self._health_topic, payload)
        return True

    def stats(self) -> NodeStats:
        if self._final is not None:
            return self._final
        publisher = self._publisher
        dropped_heartbeats, dropped_changes = self._outbox.dropped()
        return NodeStats(
            boot=self._boot, connected=publisher is not None and publisher.connected,
            sent=self._sent, acked=self._acked, resent=self._resent, rejected=self._rejected,
            messages=self._messages, in_flight_messages=len(self._in_flight),
            depth=self._outbox.depth(), dropped_heartbeats=dropped_heartbeats,
            dropped_changes=dropped_changes,
            connects=0 if publisher is None else publisher.connects,
            reconnect_attempts=0 if publisher is None else publisher.reconnect_attempts,
        )

    # ---- network thread (via _Owner) ----------------------------------------

    def _connected(self) -> None:
        self._generation += 1
        birth = encode_status(Status(online=True, boot=self._boot, at=_now()))
        assert self._publisher is not None
        self._publisher.publish(self._status_topic, birth, retain=True)
        self._online.set()
        self._wake.set()

    def _disconnected(self) -> None:
        self._online.clear()
        if not self._stopping.is_set() and self._publisher is not None:
            # A new MQTT session gets a new boot (as Sparkplug's bdSeq): the broker
            # may already have published this session's will (it does so when it
            # shuts down), and the birth of the next session must be newer than it.
            self._boot = self._outbox.open_session()
            self._publisher.set_will(self._will())

    def _message(self, topic_: str, payload: bytes) -> None:
        if topic_ == self._cmd_topic and self._on_command is not None:
            self._on_command(payload)

    def _acked_mid(self, mid: int, accepted: bool) -> None:
        self._acks.append((mid, accepted))
        self._wake.set()

    # ---- sender thread ---------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._step()
            except GatewayError:
                log.exception("gateway %s: send round failed; retrying", self.gateway)
                self._stopping.wait(1.0)

    def _step(self) -> None:
        self._apply_acks()
        if self._generation != self._seen_generation:
            self._seen_generation = self._generation
            self._in_flight.clear()
            self._cursor = 0
        if time.monotonic() < self._hold_until:
            return  # the run loop looks again within half a second
        while (self._online.is_set() and not self._stopping.is_set()
               and len(self._in_flight) < self._max_inflight):
            events = self._outbox.pending(self._batch_max, after_seq=self._cursor)
            if not events:
                break
            self._send(events)

    def _send(self, events: Sequence[OccupancyEvent]) -> None:
        assert self._publisher is not None
        for payload, seqs in encode_batches(self.gateway, self._boot, events):
            mid = self._publisher.publish(self._events_topic, payload)
            self._in_flight[mid] = seqs
            self._messages += 1
            self._sent += len(seqs)
            self._resent += sum(1 for s in seqs if s <= self._high_water)
            self._cursor = seqs[-1]
            self._high_water = max(self._high_water, self._cursor)

    def _apply_acks(self) -> None:
        done: list[int] = []
        while self._acks:
            mid, accepted = self._acks.popleft()
            seqs = self._in_flight.pop(mid, ())
            if seqs and not accepted:
                self._rejected += len(seqs)
                self._refused_streak += 1
                # the first of a streak is a warning; the rest wait for its end (no flood)
                log.log(logging.WARNING if self._refused_streak == 1 else logging.DEBUG,
                        "broker did not accept message %d (seqs %d..%d) of gateway %s: resent in "
                        "%.1fs, until it does (its ACL? its login?)", mid, seqs[0], seqs[-1],
                        self.gateway, REJECTED_RETRY_S)
                # send it again from the outbox after a pause (same seqs)
                self._cursor = min(self._cursor, seqs[0] - 1)
                self._hold_until = time.monotonic() + REJECTED_RETRY_S
            elif seqs:
                done.extend(seqs)
        if done and self._refused_streak:
            log.warning("broker accepts messages of gateway %s again, after refusing %d",
                        self.gateway, self._refused_streak)
            self._refused_streak = 0
        if done:
            self._acked += self._outbox.remove(done)
            with self._drained:
                self._drained.notify_all()

    def _will(self) -> Will:
        return Will(self._status_topic, encode_status(Status(online=False, boot=self._boot)))

    def _mqtt_publisher(self, will: Will, owner: PublisherOwner) -> Publisher:
        return MqttPublisher(
            self._mqtt, client_id=self._client_id, will=will, owner=owner,
            keepalive_s=self._keepalive, reconnect_max_s=self._reconnect_max_s,
            backoff=self._backoff, tls=self._tls,
            subscriptions=(self._cmd_topic,) if self._on_command is not None else ())


class _Owner:
    """Routes the publisher's callbacks to the node without widening its surface."""

    def __init__(self, node: GatewayNode) -> None:
        self._node = node

    def on_connected(self) -> None:
        self._node._connected()

    def on_disconnected(self) -> None:
        self._node._disconnected()

    def on_acked(self, mid: int, accepted: bool) -> None:
        self._node._acked_mid(mid, accepted)

    def on_message(self, topic: str, payload: bytes) -> None:
        self._node._message(topic, payload)


def _now() -> datetime:
    return datetime.now(UTC)
