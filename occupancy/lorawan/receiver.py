"""ChirpStack events → readings of bound LoRaWAN sensors: dedup, sessions, decoding (pure).

How this works. A ``Receiver`` knows the ``Binding`` of every sensor (DevEUI
→ device id, space, and how to read occupancy: a built-in ``model`` or the
``occupied_path`` of the network server's own decoded ``object``). Its one
entry point, ``receive(topic, payload, now)``, takes one MQTT message of
ChirpStack's integration and returns the ``SensorReading``s it yields (none
or one); ``now`` is the caller's clock, used only where the network server
gave no time. Nothing here does I/O or reads a clock; problems are counted
(``counts()``) and logged once per kind and DevEUI.

Each message goes through these steps; the first that says "stop" decides:

1. the topic: ``{prefix}/{application}/device/{dev_eui}/event/{event}`` of a
   configured application, else ``malformed``;
2. the DevEUI: bound, else ``unknown_devices``;
3. the payload (``occupancy.lorawan.chirpstack``), else ``malformed``;
4. the ``deduplicationId`` (per event type: an uplink and the ``join`` or
   ``status`` it caused share one): seen among the last ``remember``, then
   ``duplicates`` — several LoRa gateways, a QoS 1 redelivery;
5. for an uplink, the device's session (``devAddr``, last ``fCnt``, last
   network time), as in the table below;
6. the frame: decoded by the model or read at ``occupied_path``; a frame
   that cannot be read is ``undecodable`` but still shows the device alive.

Session of one device (``t`` the uplink's network time, ``last`` the
session's; an fCnt compare needs both frames in one session):

=========================================== ======================= ===========
uplink                                      what it is              counted
=========================================== ======================= ===========
``t`` older than ``last``                   late                    ``late``
first of the device, or after a ``join``,    a new session           ``fcnt_resets``
or with a new ``devAddr``                                           if fCnt fell
fCnt above the last                         the next frame          ``uplinks``
fCnt below the last, ``t`` later            counter reset (rejoin,  ``fcnt_resets``
                                            device reboot): applied
fCnt equal to the last                      a repeat                ``duplicates``
fCnt below the last, no later ``t``         late                    ``late``
=========================================== ======================= ===========

So a late frame never overwrites newer state, and an fCnt that restarts
after a rejoin is not mistaken for a replay. Without network times (neither
``time`` nor an ``rxInfo`` time) a lower fCnt cannot be told from a late
frame and is ignored until the ``join`` event or a new ``devAddr`` arrives.

Time: a reading's ``at`` is the uplink's ``time`` (when ChirpStack received
it), else the earliest ``rxInfo`` time (``clock="network"`` either way),
else ``now`` (``clock="gateway"``). It is not clamped here: the gateway
service keeps each state machine's time moving forward.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from occupancy.health import LORAWAN_COUNTS, LorawanCounts
from occupancy.ids import DeviceId, SpaceRef
from occupancy.lorawan import LorawanError
from occupancy.lorawan.chirpstack import (
    EVENTS,
    Ack,
    ChirpstackError,
    Event,
    Join,
    Log,
    Status,
    Topic,
    Uplink,
    field_at,
    parse_event,
    parse_topic,
)
from occupancy.lorawan.frames import Frame, FrameKind
from occupancy.lorawan.models import decode as decode_model

log = logging.getLogger(__name__)

Clock = Literal["network", "gateway"]
Decoder = Callable[[str, int, bytes], Frame]
REMEMBER = 4096  # deduplicationIds kept: minutes of uplinks of a large lot
_LOGGED_MAX = 10_000  # (reason, DevEUI) pairs already logged; past that, log again


@dataclass(frozen=True, slots=True)
class Binding:
    """One LoRaWAN sensor: its DevEUI (lowercase), device id, space and how to read occupancy."""

    dev_eui: str
    device: DeviceId
    space: SpaceRef
    model: str | None = None
    occupied_path: str | None = None


@dataclass(frozen=True, slots=True)
class SensorReading:
    """What one event says about one sensor.

    ``occupied`` is ``None`` when the event says nothing about occupancy (a
    join, a device status, a startup or configuration frame, a frame that
    could not be read). ``heard`` is false for events that do not show the
    device alive (ChirpStack's ``log``); ``error`` is a problem to report in
    the device's health (an error frame, an undecodable frame, a log error).
    """

    device: DeviceId
    dev_eui: str
    space: SpaceRef
    at: datetime
    clock: Clock
    event: str
    occupied: bool | None = None
    heard: bool = True
    frame: Frame | None = None
    battery_pct: float | None = None
    temperature_c: float | None = None
    rssi_dbm: float | None = None
    snr_db: float | None = None
    f_cnt: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Session:
    dev_addr: str | None = None
    f_cnt: int | None = None
    time: datetime | None = None  # network time of the last applied uplink
    rejoined: bool = False  # a join was seen: the next uplink starts a session


class Receiver:
    """Turns ChirpStack events into ``SensorReading``s (see the module docstring)."""

    def __init__(self, bindings: Iterable[Binding], *, prefix: str = "application",
                 applications: Iterable[str] = (), remember: int = REMEMBER,
                 decode: Decoder = decode_model, logger: logging.Logger = log) -> None:
        self._bindings = {b.dev_eui: b for b in bindings}
        self._prefix = prefix.rstrip("/")
        self._applications = frozenset(applications)
        self._remember = remember
        self._decode = decode
        self._log = logger
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._sessions: dict[str, _Session] = {}
        self._counts: Counter[str] = Counter()
        self._logged: set[tuple[str, str]] = set()

    @property
    def bindings(self) -> Mapping[str, Binding]:
        return self._bindings

    def subscriptions(self) -> tuple[str, ...]:
        """The topic filters of the events read here, for each configured application."""
        apps = sorted(self._applications) or ["+"]
        return tuple(f"{self._prefix}/{a}/device/+/event/{e}" for a in apps for e in EVENTS)

    def counts(self) -> LorawanCounts:
        return LorawanCounts(*(self._counts[k] for k in LORAWAN_COUNTS))

    def receive(self, topic: str, payload: bytes, now: datetime) -> list[SensorReading]:
        """The readings one message yields; never raises for bad input (it counts it)."""
        try:
            where = parse_topic(topic, self._prefix)
        except ChirpstackError as exc:
            return self._problem("malformed", topic[:80], str(exc))
        if self._applications and where.application_id not in self._applications:
            return self._problem("malformed", where.application_id,
                                 f"application {where.application_id} is not configured")
        binding = self._bindings.get(where.dev_eui)
        if binding is None:
            return self._problem("unknown_devices", where.dev_eui,
                                 f"DevEUI {where.dev_eui} is bound to no space ({where.event})")
        try:
            event = parse_event(where, payload)
        except ChirpstackError as exc:
            return self._problem("malformed", where.dev_eui, f"{where.dev_eui}: {exc}")
        if self._repeated(where, event):
            self._counts["duplicates"] += 1
            return []
        return self._dispatch(binding, event, now)

    # ---- events --------------------------------------------------------------------

    def _dispatch(self, b: Binding, event: Event, now: datetime) -> list[SensorReading]:
        if isinstance(event, Uplink):
            return self._uplink(b, event, now)
        at, clock = _stamp(event.time, now)
        base = SensorReading(b.device, b.dev_eui, b.space, at, clock, "")
        if isinstance(event, Join):
            self._counts["joins"] += 1
            old = self._sessions.get(b.dev_eui, _Session())
            self._sessions[b.dev_eui] = replace(old, dev_addr=event.dev_addr, rejoined=True)
            return [replace(base, event="join")]
        if isinstance(event, Status):
            return [replace(base, event="status", battery_pct=event.battery_pct)]
        if isinstance(event, Ack):  # a txack is the LoRa gateway's, not the device's
            return [replace(base, event="ack")] if event.event == "ack" else []
        return self._logged_event(base, event)

    def _logged_event(self, base: SensorReading, event: Log) -> list[SensorReading]:
        if event.level == "INFO":
            return []
        return [replace(base, event="log", heard=False,
                        error=f"ChirpStack {event.level.lower()} {event.code}: {event.description}"[:200])]

    def _uplink(self, b: Binding, up: Uplink, now: datetime) -> list[SensorReading]:
        verdict = self._session_step(b.dev_eui, up, now)
        if verdict is not None:
            self._counts[verdict] += 1
            return []
        self._counts["uplinks"] += 1
        at, clock = _stamp(up.time or up.radio.time, now)
        reading = SensorReading(b.device, b.dev_eui, b.space, at, clock, "up", f_cnt=up.f_cnt,
                                rssi_dbm=up.radio.rssi_dbm, snr_db=up.radio.snr_db)
        return [self._read_frame(b, up, reading)]

    def _session_step(self, dev_eui: str, up: Uplink, now: datetime) -> str | None:
        """Advance the device's session with ``up``; the counter to bump if it is not applied."""
        s = self._sessions.get(dev_eui, _Session())
        t = up.time or up.radio.time
        if t is not None and s.time is not None and t < s.time:
            return "late"
        new = s.f_cnt is None or s.rejoined or (
            s.dev_addr is not None and up.dev_addr is not None and up.dev_addr != s.dev_addr)
        if not new and s.f_cnt is not None and up.f_cnt <= s.f_cnt:
            if up.f_cnt == s.f_cnt:
                return "duplicates"
            if t is None or s.time is None or t == s.time:
                return "late"
            new = True  # a lower fCnt, later in time: the counter restarted
        if new and s.f_cnt is not None and up.f_cnt <= s.f_cnt:
            self._counts["fcnt_resets"] += 1
        seen = s.time if t is None else min(t, now) if s.time is None else max(s.time, min(t, now))
        self._sessions[dev_eui] = _Session(up.dev_addr or s.dev_addr, up.f_cnt, seen)
        return None

    def _read_frame(self, b: Binding, up: Uplink, reading: SensorReading) -> SensorReading:
        if b.occupied_path is not None:
            return self._read_path(b, b.occupied_path, up, reading)
        if up.f_port == 0 or b.model is None:  # a MAC-only uplink carries no application data
            return reading
        try:
            frame = self._decode(b.model, up.f_port, up.data)
        except LorawanError as exc:
            self._problem("undecodable", b.dev_eui, f"{b.dev_eui} ({b.model}): {exc}")
            return replace(reading, error=f"undecodable frame: {exc}"[:200])
        except Exception as exc:  # a decoder's bug must not stop every other sensor
            self._problem("undecodable", b.dev_eui, f"{b.dev_eui} ({b.model}): decoder failed on "
                          f"fPort {up.f_port} {up.data.hex()}: {type(exc).__name__}: {exc}")
            return replace(reading, error=f"decoder failed: {type(exc).__name__}"[:200])
        error = f"the device reports an error: {dict(frame.fields)}"[:200] \
            if frame.kind is FrameKind.ERROR else None
        return replace(reading, occupied=frame.occupied, frame=frame, error=error,
                       battery_pct=frame.battery_pct, temperature_c=frame.temperature_c)

    def _read_path(self, b: Binding, path: str, up: Uplink,
                   reading: SensorReading) -> SensorReading:
        if up.object is None and up.f_port != 0:
            self._problem("undecodable", b.dev_eui, f"{b.dev_eui}: the uplink has no 'object': "
                          "is a codec configured in its device profile?")
            return replace(reading, error="no decoded object in the uplink")
        value = field_at(up.raw, path)
        occupied = _truth(value)
        if value is not None and occupied is None:
            self._problem("undecodable", b.dev_eui, f"{b.dev_eui}: {path}={value!r} is not a "
                          "boolean, 0/1 or occupied/free")
            return replace(reading, error=f"{path}={value!r} is not an occupancy"[:200])
        return replace(reading, occupied=occupied)

    # ---- bookkeeping ---------------------------------------------------------------

    def _repeated(self, where: Topic, event: Event) -> bool:
        dedup = getattr(event, "dedup_id", None)
        if dedup is None:
            return False
        key = (where.event, dedup)
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return False

    def _problem(self, counter: str, key: str, message: str) -> list[SensorReading]:
        """Count a problem; log it the first time for this kind and key (a DevEUI)."""
        self._counts[counter] += 1
        if (counter, key) in self._logged:
            self._log.debug("%s: %s", counter, message)
            return []
        if len(self._logged) >= _LOGGED_MAX:
            self._logged.clear()
        self._logged.add((counter, key))
        self._log.warning("chirpstack %s (logged once per device): %s", counter, message)
        return []


_TRUTH: Mapping[str, bool] = {"true": True, "occupied": True, "1": True,
                              "false": False, "free": False, "vacant": False, "0": False}


def _truth(value: Any) -> bool | None:
    """A codec's occupancy value: a boolean, 0/1, or one of ``_TRUTH``'s words."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _TRUTH.get(value.strip().lower())
    return None


def _stamp(at: datetime | None, now: datetime) -> tuple[datetime, Clock]:
    return (now, "gateway") if at is None else (at, "network")
