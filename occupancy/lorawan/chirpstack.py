"""ChirpStack v4 integration events (MQTT, JSON marshaling): topic and payload → typed events.

How this works (pure: bytes in, frozen values out). ChirpStack's MQTT
integration publishes one message per device event on
``{prefix}/{application_id}/device/{dev_eui}/event/{event}`` (the default
``event_topic`` template, prefix ``application``). ``parse_topic`` splits a
topic into a ``Topic``; ``parse_event(topic, payload)`` reads the JSON
payload of the events that matter to a parking gateway:

======== ==================================================================
``up``     an uplink: ``deduplicationId``, ``time``, ``devAddr``, ``fCnt``,
           ``fPort``, ``data`` (base64 FRMPayload), ``object`` (what the
           device profile's codec decoded, if any), ``rxInfo`` (per
           receiving gateway: ``time``, ``rssi``, ``snr``)
``join``   the device (re)joined (OTAA): a new session, a new ``devAddr``
``status`` a DevStatusAns: ``batteryLevel`` (percent), ``margin`` (dB),
           ``externalPowerSource``, ``batteryLevelUnavailable``
``ack``    the device acknowledged (or not) a confirmed downlink
``txack``  a LoRa gateway accepted a downlink for transmission
``log``    ChirpStack's own log of the device (``level``, ``code``,
           ``description``): codec errors, frame-counter resets, ...
======== ==================================================================

Strict on what is read, tolerant of what is not: a field used here with the
wrong type is a ``ChirpstackError`` naming it, while fields ChirpStack adds
in newer versions are ignored. ChirpStack marshals protobuf messages to
JSON, which leaves out fields at their default value (``fCnt`` 0, ``fPort``
0, an empty ``data``, ``batteryLevel`` 0, ``false``), so a missing field is
read as that default. Times are RFC 3339 (nanoseconds are cut to
microseconds) and always carry a zone.

``event_topic``, ``uplink_payload``, ``join_payload`` and ``status_payload``
are the inverse, for the simulators and the tests: events shaped as
ChirpStack publishes them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from occupancy.lorawan import LorawanError
from occupancy.wire import WireError, format_time, loads_strict, parse_time

MAX_EVENT_BYTES = 64 * 1024  # an uplink event with many receiving gateways is a few KiB
EVENTS = ("up", "join", "status", "ack", "txack", "log")
DEV_EUI = re.compile(r"[0-9a-f]{16}")


class ChirpstackError(LorawanError):
    """A ChirpStack event that cannot be read: wrong topic, bad JSON, a field of the wrong type."""


@dataclass(frozen=True, slots=True)
class Topic:
    """Where an event was published: application, device (lowercase DevEUI) and event type."""

    application_id: str
    dev_eui: str
    event: str


@dataclass(frozen=True, slots=True)
class Radio:
    """What the receiving LoRa gateways heard: the best signal and the earliest time."""

    gateways: int = 0
    rssi_dbm: float | None = None
    snr_db: float | None = None
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Uplink:
    dedup_id: str
    time: datetime | None
    dev_eui: str
    dev_addr: str | None
    f_cnt: int
    f_port: int
    data: bytes
    object: Mapping[str, Any] | None
    radio: Radio
    raw: Mapping[str, Any] = field(repr=False, compare=False)  # for ``occupied_path``


@dataclass(frozen=True, slots=True)
class Join:
    dedup_id: str
    time: datetime | None
    dev_eui: str
    dev_addr: str | None


@dataclass(frozen=True, slots=True)
class Status:
    dedup_id: str
    time: datetime | None
    dev_eui: str
    margin_db: int
    external_power: bool
    battery_pct: float | None  # None: the device cannot tell (or is mains powered)


@dataclass(frozen=True, slots=True)
class Ack:
    """``ack`` (the device answered a confirmed downlink) or ``txack`` (a gateway will send one)."""

    event: str
    time: datetime | None
    dev_eui: str
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class Log:
    time: datetime | None
    dev_eui: str
    level: str  # INFO, WARNING, ERROR
    code: str
    description: str


Event = Uplink | Join | Status | Ack | Log


def parse_topic(topic: str, prefix: str = "application") -> Topic:
    """``{prefix}/{application_id}/device/{dev_eui}/event/{event}``; ``ChirpstackError`` otherwise."""
    head = prefix.rstrip("/") + "/"
    parts = topic[len(head):].split("/") if topic.startswith(head) else []
    if len(parts) != 5 or parts[1] != "device" or parts[3] != "event" or not parts[0]:
        raise ChirpstackError(
            f"topic {topic!r} is not {head}{{application}}/device/{{dev_eui}}/event/{{event}}")
    dev_eui = parts[2].lower()
    if not DEV_EUI.fullmatch(dev_eui):
        raise ChirpstackError(f"topic {topic!r}: DevEUI {parts[2]!r} is not 16 hex digits")
    return Topic(parts[0], dev_eui, parts[4])


def parse_event(topic: Topic, payload: bytes) -> Event:
    """The event of one message; ``ChirpstackError`` names what is wrong (or unsupported)."""
    if topic.event not in _PARSERS:
        raise ChirpstackError(f"event {topic.event!r} is not one of {', '.join(EVENTS)}")
    if len(payload) > MAX_EVENT_BYTES:
        raise ChirpstackError(f"{topic.event}: {len(payload)} bytes > {MAX_EVENT_BYTES}")
    try:
        obj = loads_strict(payload)
    except WireError as exc:
        raise ChirpstackError(f"{topic.event}: not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ChirpstackError(f"{topic.event}: the payload is {type(obj).__name__}, not an object")
    _check_device(obj, topic)
    return _PARSERS[topic.event](obj, topic)


def field_at(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (``object.occupied``), ``None`` where the path ends early."""
    value: Any = obj
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


# ---- the events -----------------------------------------------------------------


def _uplink(obj: Mapping[str, Any], topic: Topic) -> Uplink:
    data = _get(obj, "data", str, "up") or ""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ChirpstackError(f"up.data={data[:40]!r}: not base64") from exc
    decoded = _get(obj, "object", dict, "up")
    return Uplink(
        dedup_id=_dedup(obj, "up"), time=_time(obj, "time", "up"), dev_eui=topic.dev_eui,
        dev_addr=_dev_addr(obj, "up"), f_cnt=_uint(obj, "fCnt", "up"),
        f_port=_uint(obj, "fPort", "up", 255), data=raw, object=decoded,
        radio=_radio(_get(obj, "rxInfo", list, "up") or []), raw=obj)


def _join(obj: Mapping[str, Any], topic: Topic) -> Join:
    return Join(_dedup(obj, "join"), _time(obj, "time", "join"), topic.dev_eui,
                _dev_addr(obj, "join"))


def _status(obj: Mapping[str, Any], topic: Topic) -> Status:
    unavailable = bool(_get(obj, "batteryLevelUnavailable", bool, "status"))
    external = bool(_get(obj, "externalPowerSource", bool, "status"))
    level = _number(obj, "batteryLevel", "status")
    if level is not None and not 0 <= level <= 100:
        raise ChirpstackError(f"status.batteryLevel={level!r}: want 0..100")
    battery = None if unavailable or external else (level or 0.0)
    margin = _get(obj, "margin", int, "status") or 0
    return Status(_dedup(obj, "status"), _time(obj, "time", "status"), topic.dev_eui, margin,
                  external, battery)


def _ack(obj: Mapping[str, Any], topic: Topic) -> Ack:
    acked = bool(_get(obj, "acknowledged", bool, topic.event))
    return Ack(topic.event, _time(obj, "time", topic.event), topic.dev_eui,
               acked or topic.event == "txack")


def _log(obj: Mapping[str, Any], topic: Topic) -> Log:
    return Log(_time(obj, "time", "log"), topic.dev_eui, _get(obj, "level", str, "log") or "INFO",
               _get(obj, "code", str, "log") or "UNKNOWN", _get(obj, "description", str, "log") or "")


_PARSERS: Mapping[str, Callable[[Mapping[str, Any], Topic], Event]] = {
    "up": _uplink, "join": _join, "status": _status, "ack": _ack, "txack": _ack, "log": _log}


def _radio(rx: list[Any]) -> Radio:
    rssi: list[float] = []
    snr: list[float] = []
    times: list[datetime] = []
    for i, item in enumerate(rx):
        where = f"up.rxInfo[{i}]"
        if not isinstance(item, dict):
            raise ChirpstackError(f"{where} is not an object")
        for key, into in (("rssi", rssi), ("snr", snr)):
            value = _number(item, key, where)
            if value is not None:
                into.append(value)
        at = _time(item, "time", where)
        if at is not None:
            times.append(at)
    return Radio(len(rx), max(rssi, default=None), max(snr, default=None), min(times, default=None))


# ---- fields ---------------------------------------------------------------------


def _check_device(obj: Mapping[str, Any], topic: Topic) -> None:
    info = _get(obj, "deviceInfo", dict, topic.event)
    eui = None if info is None else _get(info, "devEui", str, f"{topic.event}.deviceInfo")
    if eui is not None and eui.lower() != topic.dev_eui:
        raise ChirpstackError(f"{topic.event}.deviceInfo.devEui={eui!r} is not the topic's "
                              f"{topic.dev_eui}")


def _get(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """``obj[key]`` if present and of ``kind`` (bool is not a number), ``None`` if absent."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
        raise ChirpstackError(f"{where}.{key}={_short(value)}: want {kind.__name__}")
    return value


def _number(obj: Mapping[str, Any], key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ChirpstackError(f"{where}.{key}={_short(value)}: want a number")
    return float(value)


def _uint(obj: Mapping[str, Any], key: str, where: str, top: int = 0xFFFFFFFF) -> int:
    value = _get(obj, key, int, where) or 0
    if not 0 <= value <= top:
        raise ChirpstackError(f"{where}.{key}={value!r}: want 0..{top}")
    return int(value)


def _dedup(obj: Mapping[str, Any], where: str) -> str:
    value = _get(obj, "deduplicationId", str, where)
    if not value or len(value) > 64:
        raise ChirpstackError(f"{where}.deduplicationId={_short(value)}: want 1..64 characters")
    return str(value)


def _dev_addr(obj: Mapping[str, Any], where: str) -> str | None:
    value = _get(obj, "devAddr", str, where)
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{8}", value):
        raise ChirpstackError(f"{where}.devAddr={_short(value)}: want 8 hex digits")
    return None if value is None else value.lower()


def _time(obj: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return parse_time(value, f"{where}.{key}")
    except WireError as exc:
        raise ChirpstackError(str(exc)) from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- the inverse, for simulators and tests ----------------------------------------


@dataclass(frozen=True, slots=True)
class RxGateway:
    """One LoRa gateway that heard an uplink (an ``rxInfo`` entry)."""

    gateway_id: str
    rssi_dbm: int = -90
    snr_db: float = 7.5
    time: datetime | None = None


def event_topic(application_id: str, dev_eui: str, event: str, prefix: str = "application") -> str:
    """The topic ChirpStack's default ``event_topic`` template gives."""
    return f"{prefix.rstrip('/')}/{application_id}/device/{dev_eui.lower()}/event/{event}"


def uplink_payload(application_id: str, dev_eui: str, *, dedup_id: str, time: datetime | None,
                   dev_addr: str, f_cnt: int, f_port: int, data: bytes,
                   rx: tuple[RxGateway, ...] = (), decoded: Mapping[str, Any] | None = None) -> bytes:
    """An ``up`` event as ChirpStack v4 marshals it to JSON (defaults left out, like protobuf)."""
    body: dict[str, Any] = {**_common(application_id, dev_eui, dedup_id, time),
                            "devAddr": dev_addr, "adr": True, "dr": 5, "confirmed": False}
    body.update({k: v for k, v in (("fCnt", f_cnt), ("fPort", f_port)) if v})
    if data:
        body["data"] = base64.b64encode(data).decode("ascii")
    if decoded is not None:
        body["object"] = dict(decoded)
    body["rxInfo"] = [_rx(g) for g in rx]
    return _dumps(body)


def join_payload(application_id: str, dev_eui: str, *, dedup_id: str, time: datetime | None,
                 dev_addr: str) -> bytes:
    return _dumps({**_common(application_id, dev_eui, dedup_id, time), "devAddr": dev_addr})


def status_payload(application_id: str, dev_eui: str, *, dedup_id: str, time: datetime | None,
                   battery_pct: float | None, margin_db: int = 10) -> bytes:
    body = {**_common(application_id, dev_eui, dedup_id, time), "margin": margin_db}
    if battery_pct is None:
        body["batteryLevelUnavailable"] = True
    else:
        body["batteryLevel"] = battery_pct
    return _dumps(body)


def _common(application_id: str, dev_eui: str, dedup_id: str, time: datetime | None) -> dict[str, Any]:
    body: dict[str, Any] = {"deduplicationId": dedup_id}
    if time is not None:
        body["time"] = format_time(time)
    body["deviceInfo"] = {"tenantId": "00000000-0000-0000-0000-000000000000",
                          "tenantName": "ChirpStack", "applicationId": application_id,
                          "applicationName": "parking", "deviceProfileName": "parking sensor",
                          "deviceName": dev_eui.lower(), "devEui": dev_eui.lower(), "tags": {}}
    return body


def _rx(g: RxGateway) -> dict[str, Any]:
    out: dict[str, Any] = {"gatewayId": g.gateway_id, "rssi": g.rssi_dbm, "snr": g.snr_db,
                           "crcStatus": "CRC_OK"}
    if g.time is not None:
        out["time"] = format_time(g.time)
    return out


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")
