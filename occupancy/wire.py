"""The wire format of contract v1: encode and decode, pure and strict.

``decode_events`` turns the bytes of an ``events`` message into an
``EventBatch`` or raises ``WireError`` whose ``reason`` is a machine-readable
``Reason``. Decoding checks form only (types, ids, ranges); what needs the
registry or a clock (is the space bound to the gateway, is the time in the
future) is checked by ``occupancy.validate``.

Encoding is canonical (sorted keys, no spaces, UTC with milliseconds and a
``Z``), so the same batch always becomes the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

from occupancy import OccupancyError
from occupancy.ids import DeviceId, GatewayId, IdError, SpaceRef
from occupancy.model import EventKind, OccupancyEvent, Source, SpaceState

VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_EVENTS = 5000
# seq: one counter over a gateway's whole life. 2**53 (exact in a JSON double, so
# every client reads it right) lasts 28,000 years at 10,000 events a second.
MAX_SEQ = 2**53
# boot: +1 per gateway start and per MQTT session. 2**31 - 1 is one new session a
# second for 68 years.
MAX_BOOT = 2**31 - 1
# No number on the wire needs more digits than MAX_SEQ: longer ones are refused
# before Python converts them (json.loads raises a bare ValueError past 4,300).
MAX_INT_DIGITS = 20
# Times outside these bounds are refused at decode: nothing real is observed
# there, and the extremes break arithmetic (astimezone) and storage (±infinity).
MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)

_E = TypeVar("_E", bound=StrEnum)


class Reason(StrEnum):
    """Why a message or an event was rejected (stored in ``dead_letters.reason``)."""

    OVERSIZE = "oversize"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_VERSION = "unsupported_version"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    UNKNOWN_FIELD = "unknown_field"
    GATEWAY_MISMATCH = "gateway_mismatch"
    EMPTY_BATCH = "empty_batch"
    TOO_MANY_EVENTS = "too_many_events"
    BAD_TOPIC = "bad_topic"
    UNKNOWN_GATEWAY = "unknown_gateway"
    SPACE_NOT_BOUND = "space_not_bound"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_OLD = "too_old"
    OUT_OF_RANGE = "out_of_range"
    DUPLICATE_SEQ = "duplicate_seq"
    BOOT_JUMP = "boot_jump"
    STORE_ERROR = "store_error"
    INTERNAL = "internal"


class WireError(OccupancyError, ValueError):
    """A payload that breaks the contract; ``reason`` says how, ``detail`` where."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class EventBatch:
    """The payload of an ``events`` message."""

    gateway: GatewayId
    boot: int
    events: tuple[OccupancyEvent, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """Birth (``online=True``) or last will of a gateway session."""

    online: bool
    boot: int
    at: datetime | None = None


_BATCH_KEYS = frozenset({"v", "gateway", "boot", "events"})
_EVENT_KEYS = frozenset({"seq", "space", "state", "at", "source", "confidence", "device", "kind"})
_EVENT_REQUIRED = ("seq", "space", "state", "at")


# ---- encoding -------------------------------------------------------------


def format_time(at: datetime) -> str:
    """UTC, millisecond precision, ``Z`` suffix: ``2026-11-26T10:00:00.123Z``."""
    if at.tzinfo is None:
        raise ValueError("naive datetime on the wire")
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_to_dict(event: OccupancyEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seq": event.seq,
        "space": str(event.space),
        "state": event.state.value,
        "at": format_time(event.at),
        "source": event.source.value,
    }
    if event.confidence is not None:
        out["confidence"] = round(event.confidence, 4)
    if event.device is not None:
        out["device"] = str(event.device)
    if event.kind is not EventKind.CHANGE:
        out["kind"] = event.kind.value
    return out


def dumps_canonical(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same value is always the same bytes."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def encode_events(batch: EventBatch) -> bytes:
    """The canonical bytes of an events message."""
    events = [event_to_dict(e) for e in batch.events]
    return dumps_canonical({"v": VERSION, "gateway": str(batch.gateway), "boot": batch.boot,
                            "events": events})


def encode_status(status: Status) -> bytes:
    body: dict[str, Any] = {"v": VERSION, "online": status.online, "boot": status.boot}
    if status.at is not None:
        body["at"] = format_time(status.at)
    return dumps_canonical(body)


# ---- decoding -------------------------------------------------------------


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise WireError(Reason.OUT_OF_RANGE, f"an integer of {len(text)} characters")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise WireError(Reason.OUT_OF_RANGE, f"number {text[:40]!r} is not finite")
    return value


def _no_constant(text: str) -> Any:
    raise WireError(Reason.OUT_OF_RANGE, f"{text} is not a JSON number")


def loads_strict(payload: bytes) -> Any:
    """``json.loads`` that raises only ``WireError``: huge integers, ``NaN`` and
    ``Infinity`` are refused (``out_of_range``), anything else unparsable is
    ``malformed_json``, and so is any text but UTF-8 (the contract's encoding;
    ``json.loads`` of bytes would also take UTF-16, UTF-32 and UTF-8-encoded
    surrogates). A leading UTF-8 byte order mark is ignored, as RFC 8259 allows."""
    try:
        text = payload.decode("utf-8-sig")
        return json.loads(text, parse_int=_bounded_int, parse_float=_finite_float,
                          parse_constant=_no_constant)
    except WireError:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, JSONDecodeError, …
        raise WireError(Reason.MALFORMED_JSON, str(exc)[:200]) from exc


def _load_object(payload: bytes) -> Mapping[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(Reason.OVERSIZE, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    obj = loads_strict(payload)
    if not isinstance(obj, dict):
        raise WireError(Reason.NOT_AN_OBJECT, f"top level is {type(obj).__name__}")
    if obj.get("v") != VERSION or isinstance(obj.get("v"), bool):
        raise WireError(Reason.UNSUPPORTED_VERSION, f"v={obj.get('v')!r}, want {VERSION}")
    return obj


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    if obj.keys() <= allowed:
        return
    extra = set(obj) - allowed
    if extra:
        raise WireError(Reason.UNKNOWN_FIELD, f"{where}: {sorted(extra)}")


def _int(obj: Mapping[str, Any], key: str, where: str, lo: int = 0, hi: int = MAX_SEQ) -> int:
    if key not in obj:
        raise WireError(Reason.MISSING_FIELD, f"{where}.{key}")
    value = obj[key]
    if type(value) is not int or value < lo:
        raise WireError(Reason.BAD_FIELD, f"{where}.{key}={value!r}: want an integer {lo}..{hi}")
    if value > hi:
        raise WireError(Reason.OUT_OF_RANGE, f"{where}.{key}={value!r}: want at most {hi}")
    return value


def parse_time(value: Any, where: str) -> datetime:
    """An RFC 3339 timestamp with a zone; naive times are refused."""
    if not isinstance(value, str) or not 19 <= len(value) <= 40:
        raise WireError(Reason.BAD_FIELD, f"{where}={value!r}: want an RFC 3339 time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise WireError(Reason.BAD_FIELD, f"{where}={value!r}: {exc}") from exc
    if at.tzinfo is None:
        raise WireError(Reason.BAD_FIELD, f"{where}={value!r}: time zone missing")
    # first as wall time, before any conversion (astimezone overflows at the years
    # 1 and 9999; a day of margin is wider than any UTC offset), then exactly
    if not _WALL_MIN <= at.replace(tzinfo=None) < _WALL_MAX:
        raise _out_of_range_time(value, where)
    utc = at if at.tzinfo is UTC else at.astimezone(UTC)
    if not MIN_TIME <= utc < MAX_TIME:
        raise _out_of_range_time(value, where)
    return utc


def _out_of_range_time(value: str, where: str) -> WireError:
    return WireError(Reason.OUT_OF_RANGE, f"{where}={value!r}: want {MIN_TIME.year}..{MAX_TIME.year}")


_WALL_MIN = MIN_TIME.replace(tzinfo=None) - timedelta(days=1)
_WALL_MAX = MAX_TIME.replace(tzinfo=None) + timedelta(days=1)


def _enum(kind: type[_E], value: Any, where: str) -> _E:
    # a dict lookup: calling the enum class is several times slower (hot path)
    member = _MEMBERS[kind].get(value) if isinstance(value, str) else None
    if member is None:
        raise WireError(Reason.BAD_FIELD, f"{where}={value!r}")
    return member  # type: ignore[return-value]


_MEMBERS: dict[type[StrEnum], dict[str, StrEnum]] = {
    kind: {m.value: m for m in kind} for kind in (SpaceState, Source, EventKind)
}


@lru_cache(maxsize=65_536)
def _space_ref(text: str) -> SpaceRef:
    """Parsed once per distinct space (bounded: garbage cannot grow it past the limit)."""
    return SpaceRef.parse(text)


@lru_cache(maxsize=4_096)
def _device(text: str) -> DeviceId:
    return DeviceId(text)


def _confidence(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not 0.0 <= value <= 1.0 or math.isnan(value):
        raise WireError(Reason.BAD_FIELD, f"{where}={value!r}: want a number 0..1")
    return float(value)


def _decode_event(raw: Any, where: str) -> OccupancyEvent:
    if not isinstance(raw, dict):
        raise WireError(Reason.BAD_FIELD, f"{where} is not an object")
    _check_keys(raw, _EVENT_KEYS, where)
    for key in _EVENT_REQUIRED:
        if key not in raw:
            raise WireError(Reason.MISSING_FIELD, f"{where}.{key}")
    try:
        space = _space_ref(raw["space"]) if isinstance(raw["space"], str) else SpaceRef.parse("")
        device = raw.get("device")
        device = None if device is None else _device(device) if isinstance(device, str) else DeviceId(device)
    except IdError as exc:
        raise WireError(Reason.BAD_FIELD, f"{where}: {exc}") from exc
    return OccupancyEvent(
        seq=_int(raw, "seq", where, lo=1),
        space=space,
        state=_enum(SpaceState, raw["state"], f"{where}.state"),
        at=parse_time(raw["at"], f"{where}.at"),
        source=_enum(Source, raw.get("source", "sensor"), f"{where}.source"),
        confidence=_confidence(raw.get("confidence"), f"{where}.confidence"),
        device=device,
        kind=_enum(EventKind, raw.get("kind", "change"), f"{where}.kind"),
    )


def _decode_event_list(raw: Any) -> tuple[OccupancyEvent, ...]:
    if not isinstance(raw, list):
        raise WireError(Reason.BAD_FIELD if raw is not None else Reason.MISSING_FIELD, "events")
    if not raw:
        raise WireError(Reason.EMPTY_BATCH, "events is empty")
    if len(raw) > MAX_EVENTS:
        raise WireError(Reason.TOO_MANY_EVENTS, f"{len(raw)} events > {MAX_EVENTS}")
    events = tuple(_decode_event(item, f"events[{i}]") for i, item in enumerate(raw))
    seqs = [e.seq for e in events]
    if len(set(seqs)) != len(seqs):
        raise WireError(Reason.DUPLICATE_SEQ, "a seq appears twice in one batch")
    return events


def decode_events(payload: bytes, *, expect_gateway: str | None = None) -> EventBatch:
    """Decode an events message; ``expect_gateway`` is the gateway of its topic."""
    obj = _load_object(payload)
    _check_keys(obj, _BATCH_KEYS, "batch")
    try:
        gateway = GatewayId(obj.get("gateway"))  # type: ignore[arg-type]
    except IdError as exc:
        raise WireError(Reason.BAD_FIELD if "gateway" in obj else Reason.MISSING_FIELD,
                        str(exc)) from exc
    if expect_gateway is not None and gateway != expect_gateway:
        raise WireError(Reason.GATEWAY_MISMATCH, f"payload {gateway!r} on topic of {expect_gateway!r}")
    boot = _int(obj, "boot", "batch", hi=MAX_BOOT)
    return EventBatch(gateway=gateway, boot=boot, events=_decode_event_list(obj.get("events")))


def decode_status(payload: bytes) -> Status:
    """Decode a birth or last-will message of the ``status`` channel."""
    obj = _load_object(payload)
    _check_keys(obj, frozenset({"v", "online", "boot", "at"}), "status")
    online = obj.get("online")
    if not isinstance(online, bool):
        raise WireError(Reason.BAD_FIELD, f"status.online={online!r}: want true or false")
    at = parse_time(obj["at"], "status.at") if obj.get("at") is not None else None
    return Status(online=online, boot=_int(obj, "boot", "status", hi=MAX_BOOT), at=at)


def rejection_detail(errors: Sequence[tuple[int, Reason, str]]) -> list[dict[str, Any]]:
    """Per-event rejections as JSON-ready rows: ``[{"index", "reason", "detail"}]``."""
    return [{"index": i, "reason": r.value, "detail": d} for i, r, d in errors]
