"""Turn a batch of received MQTT messages into what to write (pure).

``plan_batch`` decodes and checks every message against the registry and a
``now`` given by the caller, and returns a ``Plan``: event rows to insert,
gateway status updates, dead letters, and the message handles to acknowledge
once the transaction holding all of it has committed. Nothing here touches the
network, the database or the clock.

``plan_batch`` never raises: each message is planned on its own, and an
unexpected exception while planning one (a bug, or an input nobody foresaw)
turns that message into a dead letter with reason ``internal`` and the
exception's type and text, while the rest of the batch goes on.
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

MAX_DETAIL_CHARS = 1000  # of an error text in a dead letter's detail
MAX_DETAIL_EVENTS = 100  # per-event rejections listed in a dead letter's detail


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
    at: datetime  # when ingest received it
    refused: DeadLetter  # what is stored if the status rule refuses it (ingest.status)


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


@dataclass(frozen=True, slots=True)
class Window:
    """What the planner checks against, besides the registry (all from the caller)."""

    now: datetime
    max_skew: timedelta
    max_age: timedelta | None = None


def describe(exc: BaseException) -> str:
    """``Type: text`` of an exception, bounded (for a dead letter's detail)."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not escape either
        text = "?"
    return f"{type(exc).__name__}: {text}"[:500]


def _dead(msg: Received, reason: Reason | str, detail: Any, topic: Topic | None) -> DeadLetter:
    return DeadLetter(
        topic=msg.topic,
        payload=msg.payload,
        reason=str(reason),
        detail=detail if isinstance(detail, dict) else {"error": str(detail)[:MAX_DETAIL_CHARS]},
        tenant=str(topic.tenant) if topic else None,
        gateway=str(topic.gateway) if topic else None,
    )


def refused(msg: Received, reason: Reason | str, detail: Any, prefix: str) -> DeadLetter:
    """A whole message as a dead letter, named after its topic's tenant and gateway when
    the topic is one (so the gateway's own rate cap applies, not the shared one). Never raises."""
    try:
        topic: Topic | None = Topic.parse(msg.topic, prefix)
    except Exception:  # a bad topic, or whatever made planning fail
        topic = None
    return _dead(msg, reason, detail, topic)


def _provisioned(msg: Received, topic: Topic, registry: Registry, plan: Plan) -> GatewayEntry | None:
    """The registry entry of the message's gateway, or None with the message dead-lettered."""
    entry = registry.gateway(topic.tenant, topic.gateway)
    if entry is None:
        plan.dead.append(_dead(msg, Reason.UNKNOWN_GATEWAY,
                               f"{topic.tenant}/{topic.gateway} is not provisioned", topic))
    return entry


def _plan_events(msg: Received, topic: Topic, registry: Registry, window: Window,
                 plan: Plan) -> None:
    try:
        batch = decode_events(msg.payload, expect_gateway=topic.gateway)
    except WireError as exc:
        plan.dead.append(_dead(msg, exc.reason, exc.detail, topic))
        return
    entry = _provisioned(msg, topic, registry, plan)
    if entry is None:
        return
    checked = check_batch(batch, bound=entry.bound, now=window.now, max_skew=window.max_skew,
                          max_age=window.max_age)
    for e in checked.accepted:
        plan.rows.append((e.at, entry.id, e.seq, entry.bound[e.space], e.state.value,
                          e.source.value, e.kind.value, e.confidence,
                          None if e.device is None else str(e.device)))
    if checked.rejected:
        detail = {"accepted": len(checked.accepted), "rejected_count": len(checked.rejected),
                  "rejected": rejection_detail(checked.rejected[:MAX_DETAIL_EVENTS])}
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
    refused = _dead(msg, Reason.BOOT_JUMP, f"boot {status.boot} refused by the status rule", topic)
    plan.statuses.append(StatusUpdate(entry.id, status.online, status.boot, now, refused))


def _plan_message(msg: Received, registry: Registry, prefix: str, window: Window,
                  plan: Plan) -> None:
    try:
        topic = Topic.parse(msg.topic, prefix)
    except TopicError as exc:
        plan.dead.append(_dead(msg, Reason.BAD_TOPIC, str(exc), None))
        return
    if topic.channel is Channel.EVENTS:
        _plan_events(msg, topic, registry, window, plan)
    elif topic.channel is Channel.STATUS:
        _plan_status(msg, topic, registry, window.now, plan)


def plan_batch(messages: Sequence[Received], *, registry: Registry, now: datetime,
               prefix: str, max_skew: timedelta, max_age: timedelta | None = None) -> Plan:
    """Decide, for every message, what it writes; every message gets acknowledged.

    Events outside ``(now - max_age, now + max_skew]`` are refused. Never raises."""
    window = Window(now, max_skew, max_age)
    plan = Plan(messages=len(messages))
    for msg in messages:
        plan.acks.append(msg.handle)
        part = Plan()
        try:
            _plan_message(msg, registry, prefix, window, part)
        except Exception as exc:  # a bug costs one message, never the process
            part = Plan(dead=[refused(msg, Reason.INTERNAL, describe(exc), prefix)])
        plan.rows += part.rows
        plan.statuses += part.statuses
        plan.dead += part.dead
    return plan


def clean_text(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogates (both refused by text and jsonb)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def dead_letter_json(d: DeadLetter) -> str | None:
    return None if d.detail is None else json.dumps(_clean(d.detail), ensure_ascii=False)
