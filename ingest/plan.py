"""Turn a batch of received MQTT messages into what to write (pure).

``plan_batch`` decodes and checks every message against the registry and a
``now`` given by the caller, and returns a ``Plan``: event rows to insert,
gateway status updates, dead letters, and the message handles to acknowledge
once the transaction holding all of it has committed. Nothing here touches the
network, the database or the clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ingest.registry import GatewayEntry, Registry
from occupancy.topics import Channel, Topic, TopicError
from occupancy.validate import check_batch
from occupancy.wire import Reason, WireError, decode_events, decode_status, rejection_detail


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the MQTT layer hands it over."""

    topic: str
    payload: bytes
    handle: Any = None  # what to acknowledge (mid and connection generation)


EventRow = tuple[datetime, int, int, int, str, str, str, float | None, str | None]
"""(observed_at, gateway_id, seq, space_id, state, source, kind, confidence, device):
the column order of ``occupancy_events`` COPY."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: str
    detail: dict[str, Any] | None
    tenant: str | None
    gateway: str | None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    gateway_id: int
    online: bool
    boot: int
    at: datetime


@dataclass
class Plan:
    rows: list[EventRow] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    acks: list[Any] = field(default_factory=list)
    messages: int = 0

    def misses_registry(self) -> bool:
        """True when some rejection might vanish with a fresher registry."""
        stale = {Reason.UNKNOWN_GATEWAY.value, Reason.SPACE_NOT_BOUND.value}
        return any(d.reason in stale for d in self.dead)


def _dead(msg: Received, reason: Reason | str, detail: Any, topic: Topic | None) -> DeadLetter:
    return DeadLetter(
        topic=msg.topic,
        payload=msg.payload,
        reason=str(reason),
        detail=detail if isinstance(detail, dict) else {"error": str(detail)},
        tenant=str(topic.tenant) if topic else None,
        gateway=str(topic.gateway) if topic else None,
    )


def _provisioned(msg: Received, topic: Topic, registry: Registry, plan: Plan) -> GatewayEntry | None:
    """The registry entry of the message's gateway, or None with the message dead-lettered."""
    entry = registry.gateway(topic.tenant, topic.gateway)
    if entry is None:
        plan.dead.append(_dead(msg, Reason.UNKNOWN_GATEWAY,
                               f"{topic.tenant}/{topic.gateway} is not provisioned", topic))
    return entry


def _plan_events(msg: Received, topic: Topic, registry: Registry, now: datetime,
                 max_skew: timedelta, plan: Plan) -> None:
    try:
        batch = decode_events(msg.payload, expect_gateway=topic.gateway)
    except WireError as exc:
        plan.dead.append(_dead(msg, exc.reason, exc.detail, topic))
        return
    entry = _provisioned(msg, topic, registry, plan)
    if entry is None:
        return
    checked = check_batch(batch, bound=entry.bound, now=now, max_skew=max_skew)
    for e in checked.accepted:
        plan.rows.append((e.at, entry.id, e.seq, entry.bound[e.space], e.state.value,
                          e.source.value, e.kind.value, e.confidence,
                          None if e.device is None else str(e.device)))
    if checked.rejected:
        detail = {"accepted": len(checked.accepted), "rejected": rejection_detail(checked.rejected)}
        plan.dead.append(_dead(msg, checked.rejected[0][1], detail, topic))


def _plan_status(msg: Received, topic: Topic, registry: Registry, now: datetime,
                 plan: Plan) -> None:
    if not msg.payload:
        return  # a retained message being cleared: nothing to record
    try:
        status = decode_status(msg.payload)
    except WireError as exc:
        plan.dead.append(_dead(msg, exc.reason, exc.detail, topic))
        return
    entry = _provisioned(msg, topic, registry, plan)
    if entry is None:
        return
    plan.statuses.append(StatusUpdate(entry.id, status.online, status.boot, now))


def plan_batch(messages: Sequence[Received], *, registry: Registry, now: datetime,
               prefix: str, max_skew: timedelta) -> Plan:
    """Decide, for every message, what it writes; every message gets acknowledged."""
    plan = Plan(messages=len(messages))
    for msg in messages:
        plan.acks.append(msg.handle)
        try:
            topic = Topic.parse(msg.topic, prefix)
        except TopicError as exc:
            plan.dead.append(_dead(msg, Reason.BAD_TOPIC, str(exc), None))
            continue
        if topic.channel is Channel.EVENTS:
            _plan_events(msg, topic, registry, now, max_skew, plan)
        elif topic.channel is Channel.STATUS:
            _plan_status(msg, topic, registry, now, plan)
    return plan


def dead_letter_json(d: DeadLetter) -> str | None:
    return None if d.detail is None else json.dumps(d.detail, ensure_ascii=False)
