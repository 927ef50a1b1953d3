"""The ``health`` and ``cmd`` payloads of contract v1: encode and decode, pure and strict.

``health`` (QoS 1, not retained), one message per gateway every ``health_s``::

    {"v": 1, "gateway": "gw-lot7", "boot": 12, "at": "2026-11-26T10:00:00.000Z",
     "uptime_s": 3600.0, "config_version": "7", "connected": true,
     "outbox": {"depth": 0, "limit": 1000000, "dropped_heartbeats": 0, "dropped_changes": 0},
     "mqtt": {"connects": 3, "reconnect_attempts": 5},
     "devices": [{"id": "bus-1", "kind": "modbus", "ok": true,
                  "last_seen": "2026-11-26T09:59:59.500Z", "errors": 0,
                  "consecutive_errors": 0, "last_error": null, "battery": null,
                  "spaces": 48, "unknown": 0}]}

A LoRaWAN sensor's entry may carry what its radio and frames told, each key
only when known: ``temperature_c``, ``rssi_dbm`` and ``snr_db`` (the best
receiving LoRa gateway of its last uplink), ``f_cnt`` (its frame counter)
and ``clock`` (``network``: its last reading is stamped with the network
server's time; ``gateway``: with the gateway's clock, the server gave none).
A gateway with a ChirpStack connection adds ``lorawan``, the counters of
what its receivers did with the events (``LorawanCounts``). A camera that
adapts adds ``adapted`` (0..1), the share of its spaces calibrated on their
own stream (docs/vision.md). All are optional, so a payload without them
decodes as before.

``cmd`` (QoS 1, retained), configuration pushed down to one gateway::

    {"v": 1, "version": "7", "heartbeat_s": 120, "health_s": 60, "stale_after_s": 90}

Every key but ``v`` and ``version`` is optional; a gateway applies what it
understands and reports ``version`` as ``config_version`` in its health.
Both decoders refuse unknown keys and wrong types with ``WireError``, like
``occupancy.wire``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from occupancy.ids import DeviceId, GatewayId, IdError
from occupancy.wire import (
    VERSION,
    Reason,
    WireError,
    dumps_canonical,
    format_time,
    loads_strict,
    parse_time,
)

MAX_HEALTH_BYTES = 256 * 1024
MAX_CMD_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """One device as its gateway sees it."""

    id: DeviceId
    kind: str
    ok: bool
    last_seen: datetime | None
    errors: int
    consecutive_errors: int
    last_error: str | None
    battery: float | None
    spaces: int
    unknown: int
    temperature_c: float | None = None
    rssi_dbm: float | None = None
    snr_db: float | None = None
    f_cnt: int | None = None
    clock: str | None = None  # "network" or "gateway": whose time the last reading carries
    adapted: float | None = None  # a camera's adaptation progress, 0..1 (docs/vision.md)


@dataclass(frozen=True, slots=True)
class LorawanCounts:
    """What a gateway's ChirpStack receivers did with the events they got (totals since start)."""

    uplinks: int = 0  # uplinks applied (a new frame of a bound device)
    duplicates: int = 0  # the same uplink again (deduplicationId, or an fCnt already applied)
    late: int = 0  # an older frame after a newer one: ignored
    fcnt_resets: int = 0  # the frame counter restarted (rejoin, reset): applied
    joins: int = 0
    unknown_devices: int = 0  # events of a DevEUI bound to no space
    undecodable: int = 0  # frames the device's model (or occupied_path) cannot read
    malformed: int = 0  # not a ChirpStack event: wrong topic, bad JSON, a field of a wrong type

    def __add__(self, other: LorawanCounts) -> LorawanCounts:
        return LorawanCounts(*(getattr(self, k) + getattr(other, k) for k in LORAWAN_COUNTS))


LORAWAN_COUNTS = tuple(f.name for f in fields(LorawanCounts))


@dataclass(frozen=True, slots=True)
class OutboxHealth:
    depth: int
    limit: int
    dropped_heartbeats: int
    dropped_changes: int


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    """The payload of a ``health`` message."""

    gateway: GatewayId
    boot: int
    at: datetime
    uptime_s: float
    config_version: str | None
    connected: bool
    outbox: OutboxHealth
    connects: int
    reconnect_attempts: int
    devices: tuple[DeviceHealth, ...]
    lorawan: LorawanCounts | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """Configuration pushed down on ``cmd``; ``None`` means "keep what you have"."""

    version: str
    heartbeat_s: float | None = None
    health_s: float | None = None
    stale_after_s: float | None = None


def _time(at: datetime | None) -> str | None:
    return None if at is None else format_time(at)


_RADIO_KEYS = ("temperature_c", "rssi_dbm", "snr_db", "f_cnt", "clock")
_CAMERA_KEYS = ("adapted",)


def _device_json(d: DeviceHealth) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(d.id), "kind": d.kind, "ok": d.ok, "last_seen": _time(d.last_seen),
        "errors": d.errors, "consecutive_errors": d.consecutive_errors,
        "last_error": d.last_error, "battery": d.battery, "spaces": d.spaces, "unknown": d.unknown}
    out.update({k: getattr(d, k) for k in (*_RADIO_KEYS, *_CAMERA_KEYS) if getattr(d, k) is not None})
    return out


def encode_health(h: GatewayHealth) -> bytes:
    devices = [_device_json(d) for d in h.devices]
    o = h.outbox
    extra = {} if h.lorawan is None else {
        "lorawan": {k: getattr(h.lorawan, k) for k in LORAWAN_COUNTS}}
    return dumps_canonical({
        "v": VERSION, "gateway": str(h.gateway), "boot": h.boot, "at": format_time(h.at),
        "uptime_s": round(h.uptime_s, 3), "config_version": h.config_version,
        "connected": h.connected,
        "outbox": {"depth": o.depth, "limit": o.limit, "dropped_heartbeats": o.dropped_heartbeats,
                   "dropped_changes": o.dropped_changes},
        "mqtt": {"connects": h.connects, "reconnect_attempts": h.reconnect_attempts},
        "devices": devices, **extra,
    })


def encode_command(c: Command) -> bytes:
    body: dict[str, Any] = {"v": VERSION, "version": c.version}
    for key in ("heartbeat_s", "health_s", "stale_after_s"):
        if getattr(c, key) is not None:
            body[key] = getattr(c, key)
    return dumps_canonical(body)


# ---- decoding -------------------------------------------------------------


def _object(payload: bytes, limit: int, keys: frozenset[str], where: str) -> Mapping[str, Any]:
    if len(payload) > limit:
        raise WireError(Reason.OVERSIZE, f"{len(payload)} bytes > {limit}")
    obj = loads_strict(payload)
    if not isinstance(obj, dict):
        raise WireError(Reason.NOT_AN_OBJECT, f"{where} is {type(obj).__name__}")
    if obj.get("v") != VERSION or isinstance(obj.get("v"), bool):
        raise WireError(Reason.UNSUPPORTED_VERSION, f"v={obj.get('v')!r}, want {VERSION}")
    extra = set(obj) - keys
    if extra:
        raise WireError(Reason.UNKNOWN_FIELD, f"{where}: {sorted(extra)}")
    return obj


def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         optional: bool = False) -> Any:
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise WireError(Reason.MISSING_FIELD, f"{where}.{key}")
    value = obj[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise WireError(Reason.BAD_FIELD, f"{where}.{key}={value!r}")
    if not isinstance(value, kind):
        raise WireError(Reason.BAD_FIELD, f"{where}.{key}={value!r}")
    return value


def _count(obj: Mapping[str, Any], key: str, where: str) -> int:
    value: int = _get(obj, key, int, where)
    if value < 0:
        raise WireError(Reason.BAD_FIELD, f"{where}.{key}={value!r}: want >= 0")
    return value


def _seconds(obj: Mapping[str, Any], key: str, where: str) -> float | None:
    value = _get(obj, key, (int, float), where, optional=True)
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise WireError(Reason.BAD_FIELD, f"{where}.{key}={value!r}: want seconds > 0")
    return None if value is None else float(value)


_DEVICE_KEYS = frozenset({"id", "kind", "ok", "last_seen", "errors", "consecutive_errors",
                          "last_error", "battery", "spaces", "unknown", *_RADIO_KEYS, *_CAMERA_KEYS})
_CLOCKS = frozenset({"network", "gateway"})


def _radio(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The optional LoRaWAN keys of a device entry."""
    out: dict[str, Any] = {}
    for key in ("temperature_c", "rssi_dbm", "snr_db"):
        value = _get(raw, key, (int, float), where, optional=True)
        if value is not None and not math.isfinite(value):
            raise WireError(Reason.BAD_FIELD, f"{where}.{key}={value!r}")
        out[key] = None if value is None else float(value)
    out["f_cnt"] = _count(raw, "f_cnt", where) if raw.get("f_cnt") is not None else None
    clock = _get(raw, "clock", str, where, optional=True)
    if clock is not None and clock not in _CLOCKS:
        raise WireError(Reason.BAD_FIELD, f"{where}.clock={clock!r}: want network or gateway")
    out["clock"] = clock
    return out


def _device(raw: Any, where: str) -> DeviceHealth:
    if not isinstance(raw, dict):
        raise WireError(Reason.BAD_FIELD, f"{where} is not an object")
    if set(raw) - _DEVICE_KEYS:
        raise WireError(Reason.UNKNOWN_FIELD, f"{where}: {sorted(set(raw) - _DEVICE_KEYS)}")
    try:
        device = DeviceId(_get(raw, "id", str, where))
    except IdError as exc:
        raise WireError(Reason.BAD_FIELD, f"{where}: {exc}") from exc
    seen = raw.get("last_seen")
    battery = _get(raw, "battery", (int, float), where, optional=True)
    adapted = _get(raw, "adapted", (int, float), where, optional=True)
    if adapted is not None and not 0 <= adapted <= 1:
        raise WireError(Reason.BAD_FIELD, f"{where}.adapted={adapted!r}: want 0..1")
    return DeviceHealth(
        id=device, kind=_get(raw, "kind", str, where), ok=_get(raw, "ok", bool, where),
        last_seen=None if seen is None else parse_time(seen, f"{where}.last_seen"),
        errors=_count(raw, "errors", where),
        consecutive_errors=_count(raw, "consecutive_errors", where),
        last_error=_get(raw, "last_error", str, where, optional=True),
        battery=None if battery is None else float(battery),
        spaces=_count(raw, "spaces", where), unknown=_count(raw, "unknown", where),
        **_radio(raw, where),
        adapted=None if adapted is None else float(adapted),
    )


_HEALTH_KEYS = frozenset({"v", "gateway", "boot", "at", "uptime_s", "config_version", "connected",
                          "outbox", "mqtt", "devices", "lorawan"})


def _lorawan(obj: Mapping[str, Any]) -> LorawanCounts | None:
    raw = _get(obj, "lorawan", dict, "health", optional=True)
    if raw is None:
        return None
    extra = set(raw) - set(LORAWAN_COUNTS)
    if extra:
        raise WireError(Reason.UNKNOWN_FIELD, f"health.lorawan: {sorted(extra)}")
    return LorawanCounts(*(_count(raw, k, "health.lorawan") for k in LORAWAN_COUNTS))


def decode_health(payload: bytes) -> GatewayHealth:
    """Decode a ``health`` message; raises ``WireError``."""
    obj = _object(payload, MAX_HEALTH_BYTES, _HEALTH_KEYS, "health")
    try:
        gateway = GatewayId(_get(obj, "gateway", str, "health"))
    except IdError as exc:
        raise WireError(Reason.BAD_FIELD, str(exc)) from exc
    outbox = _get(obj, "outbox", dict, "health")
    mqtt = _get(obj, "mqtt", dict, "health")
    devices = _get(obj, "devices", list, "health")
    return GatewayHealth(
        gateway=gateway, boot=_count(obj, "boot", "health"),
        at=parse_time(obj.get("at"), "health.at"),
        uptime_s=float(_get(obj, "uptime_s", (int, float), "health")),
        config_version=_get(obj, "config_version", str, "health", optional=True),
        connected=_get(obj, "connected", bool, "health"),
        outbox=OutboxHealth(*(_count(outbox, k, "health.outbox") for k in
                              ("depth", "limit", "dropped_heartbeats", "dropped_changes"))),
        connects=_count(mqtt, "connects", "health.mqtt"),
        reconnect_attempts=_count(mqtt, "reconnect_attempts", "health.mqtt"),
        devices=tuple(_device(d, f"health.devices[{i}]") for i, d in enumerate(devices)),
        lorawan=_lorawan(obj),
    )


_CMD_KEYS = frozenset({"v", "version", "heartbeat_s", "health_s", "stale_after_s"})


def decode_command(payload: bytes) -> Command:
    """Decode a ``cmd`` message; raises ``WireError``."""
    obj = _object(payload, MAX_CMD_BYTES, _CMD_KEYS, "cmd")
    version = _get(obj, "version", (str, int), "cmd")
    if not 1 <= len(str(version)) <= 64:
        raise WireError(Reason.BAD_FIELD, f"cmd.version={version!r}: want 1..64 characters")
    return Command(version=str(version), heartbeat_s=_seconds(obj, "heartbeat_s", "cmd"),
                   health_s=_seconds(obj, "health_s", "cmd"),
                   stale_after_s=_seconds(obj, "stale_after_s", "cmd"))
