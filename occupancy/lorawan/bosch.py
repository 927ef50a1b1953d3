"""Bosch Parking Lot Sensor (TPL110/TPS110): its uplink frames, decoded and encoded.

How this works: the sensor tells the frame's meaning by its fPort, never by a
type byte, so ``decode`` looks the port up in ``_DECODERS`` and the function
there reads the bytes at fixed offsets. Multi-byte numbers are little-endian.

    port 1  parking status   1 byte: bit 0 = occupied (sent when it changes)
    port 2  heartbeat        byte 0 bit 0 = occupied; byte 1 (firmware 0.29+) the
                             temperature, signed °C
    port 3  start-up         17 bytes: three 4-byte debug entries (bytes 0-11, the
                             code is the low 12 bits of each entry's first two
                             bytes, 0 = none), firmware version bytes 12.13.14
                             (major.minor.patch), reset cause byte 15, byte 16
                             bit 0 = occupied
    port 4  device info      the answer to a downlink request: 3 bytes are the
                             firmware version, other lengths are kept as hex
    port 5  device usage     the answer to a usage request: byte 0 the usage type,
                             the rest its value (kept as hex)
    port 6  debug            10 bytes: timestamp u32 (bytes 0-3), debug code
                             (low 12 bits of bytes 4-5), sequence number u16
                             (bytes 8-9)
    port 7  temperature alert  byte 0, signed °C (firmware 0.29+, when the
                             threshold alerts of downlink port 60 are on; in the
                             v0.29.4 description, not in Bosch's 0.29.2 codec)

Layouts follow Bosch's "Parking Lot Sensor Communication Interface - Technical
Description" (rev.3 v0.23.3 and rev.1 v0.29.4) as encoded in Bosch's codec for
firmware 0.29.2 in the TTN device repository (``vendor/bosch/tpl110-0292.js``)
and its examples. The firmware version reads bytes 12.13.14 in that order
(``00 1d 02`` is 0.29.2); some third-party converters print it reversed.

Frames longer than their layout are accepted and the extra bytes ignored: the
heartbeat grew a temperature byte in firmware 0.29, so later firmware may append
more. Unknown reset causes or usage types do not fail a frame (its occupancy is
still good): they are reported as ``unknown`` beside the raw code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import Frame, FrameKind, Model, Reading, need

NAME = "bosch-tpl110"
REFERENCE = ("Bosch Parking Lot Sensor Communication Interface - Technical Description "
             "rev.3 v0.23.3 / rev.1 v0.29.4; Bosch codec tpl110-0292.js (TTN lorawan-devices)")

# Start-up byte 15 (the codes Bosch's 0.29.2 codec documents).
RESET_CAUSES: Mapping[int, str] = {
    1: "watchdog",
    2: "power_on",
    3: "system_request",
    4: "other",
}

# Device usage request/answer types (port 55 downlink, port 5 uplink byte 0).
USAGE_TYPES: Mapping[int, str] = {
    0: "parking_status_changes",
    1: "time_occupied",
    2: "uplinks_sent",
    3: "radar_triggers",
    4: "time_since_restart",
    5: "resets_since_installation",
    6: "time_since_installation",
}

# The debug code our encoder sends (the sensor has many: 2xx reset and join,
# 4xx detection, 7xx radio, 8xx-9xx refused downlinks).
DEBUG_UPLINK_NOT_ACKED = 729  # a confirmed uplink was not acknowledged after 8 tries

# The firmware our encoder claims to run.
FIRMWARE = (0, 29, 2)

_STARTUP_LEN = 17
_DEBUG_LEN = 10


def _s8(byte: int) -> int:
    return byte - 0x100 if byte & 0x80 else byte


def _u8(value: float) -> int:
    """A signed °C as the one byte the sensor sends (clamped to -128..127)."""
    if not math.isfinite(value):
        raise FrameError(f"{NAME}: temperature {value} cannot be encoded")
    return max(-128, min(127, round(value))) & 0xFF


def _debug_code(lo: int, hi: int) -> int:
    return ((hi & 0x0F) << 8) | lo


def _occupied(byte: int) -> bool:
    return bool(byte & 0x01)


def _status(fport: int, p: bytes) -> Frame:
    need(NAME, fport, p, 1, "parking status")
    return Frame(NAME, fport, FrameKind.STATUS, occupied=_occupied(p[0]))


def _heartbeat(fport: int, p: bytes) -> Frame:
    need(NAME, fport, p, 1, "heartbeat")
    temperature = float(_s8(p[1])) if len(p) >= 2 else None
    return Frame(NAME, fport, FrameKind.HEARTBEAT, occupied=_occupied(p[0]), temperature_c=temperature)


def _startup(fport: int, p: bytes) -> Frame:
    need(NAME, fport, p, _STARTUP_LEN, "start-up")
    codes = [_debug_code(p[i], p[i + 1]) for i in (0, 4, 8)]
    cause = p[15]
    fields: dict[str, Any] = {
        "firmware_version": f"{p[12]}.{p[13]}.{p[14]}",
        "reset_cause": RESET_CAUSES.get(cause, "unknown"),
        "reset_cause_code": cause,
        "debug_codes": [c for c in codes if c],
    }
    return Frame(NAME, fport, FrameKind.STARTUP, occupied=_occupied(p[16]), fields=fields)


def _device_info(fport: int, p: bytes) -> Frame:
    need(NAME, fport, p, 1, "device information")
    fields: dict[str, Any] = {"info_hex": p.hex()}
    if len(p) == 3:
        fields = {"firmware_version": f"{p[0]}.{p[1]}.{p[2]}"}
    return Frame(NAME, fport, FrameKind.CONFIG, fields=fields)


def _usage(fport: int, p: bytes) -> Frame:
    need(NAME, fport, p, 1, "device usage")
    fields = {"usage_type": USAGE_TYPES.get(p[0], "unknown"), "usage_type_code": p[0],
              "value_hex": p[1:].hex()}
    return Frame(NAME, fport, FrameKind.OTHER, fields=fields)


def _debug(fport: int, p: bytes) -> Frame:
    need(NAME, fport, p, _DEBUG_LEN, "debug")
    fields = {
        "device_time_s": int.from_bytes(p[0:4], "little"),
        "debug_code": _debug_code(p[4], p[5]),
        "sequence_number": int.from_bytes(p[8:10], "little"),
    }
    return Frame(NAME, fport, FrameKind.ERROR, fields=fields)


def _temperature_alert(fport: int, p: bytes) -> Frame:
    need(NAME, fport, p, 1, "temperature alert")
    return Frame(NAME, fport, FrameKind.OTHER, temperature_c=float(_s8(p[0])),
                 fields={"alert": "temperature"})


_DECODERS: Mapping[int, Callable[[int, bytes], Frame]] = {
    1: _status,
    2: _heartbeat,
    3: _startup,
    4: _device_info,
    5: _usage,
    6: _debug,
    7: _temperature_alert,
}


def decode(fport: int, payload: bytes) -> Frame:
    """The frame ``payload`` on ``fport`` says; ``FrameError`` for a port or length it cannot read."""
    reader = _DECODERS.get(fport)
    if reader is None:
        raise FrameError(f"{NAME}: fPort {fport} carries no uplink of this model")
    return reader(fport, bytes(payload))


def _encode_startup(r: Reading) -> bytes:
    debug = bytes(12)
    return debug + bytes(FIRMWARE) + bytes([2, int(r.occupied)])  # reset cause 2: power on


def _encode_debug(r: Reading) -> bytes:
    code = DEBUG_UPLINK_NOT_ACKED
    return (bytes(4) + bytes([code & 0xFF, code >> 8, 0, 0])
            + (r.counter & 0xFFFF).to_bytes(2, "little"))


def _encode_heartbeat(r: Reading) -> bytes:
    if r.temperature_c is None:
        return bytes([int(r.occupied)])
    return bytes([int(r.occupied), _u8(r.temperature_c)])


_ENCODERS: Mapping[FrameKind, tuple[int, Callable[[Reading], bytes]]] = {
    FrameKind.STATUS: (1, lambda r: bytes([int(r.occupied)])),
    FrameKind.HEARTBEAT: (2, _encode_heartbeat),
    FrameKind.STARTUP: (3, _encode_startup),
    FrameKind.CONFIG: (4, lambda r: bytes(FIRMWARE)),
    FrameKind.ERROR: (6, _encode_debug),
    FrameKind.OTHER: (5, lambda r: bytes([0]) + (r.counter & 0xFFFFFFFF).to_bytes(4, "big")),
}

ENCODABLE: Mapping[str, frozenset[FrameKind]] = {NAME: frozenset(_ENCODERS)}


def encode(reading: Reading) -> tuple[int, bytes]:
    """The ``(fport, payload)`` a sensor sends for ``reading`` (firmware 0.29.2 layouts).

    STATUS, HEARTBEAT (with the temperature byte when ``temperature_c`` is set) and
    STARTUP carry ``occupied``; CONFIG is a firmware-version answer, ERROR a debug
    frame (``counter`` is its sequence number), OTHER a usage answer counting
    parking status changes (``counter``).
    """
    fport, build = _ENCODERS[reading.kind]
    return fport, build(reading)


MODELS: tuple[Model, ...] = (
    Model(
        name=NAME, vendor="Bosch",
        description="Parking Lot Sensor TPL110/TPS110 (in-ground, firmware 0.23-0.29)",
        ports=frozenset(_DECODERS), decode=decode, encode=encode, reference=REFERENCE,
    ),
)
