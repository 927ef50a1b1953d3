"""Dingtek DO201 parking occupancy sensor (``dingtek-do201``), pure decoder and encoder.

How this works. The DO201 (ultrasonic + magnetometer, surface mounted) sends
every uplink on fPort 3 in Dingtek's framed format, the one all Dingtek
LoRaWAN sensors share (their "Protocol_LoRaWAN" documents)::

    0x80 | forced bit | device type | data type | length | body ... | 0x81

``length`` counts the whole frame, header and tail included. The device
type of the DO201 is ``0x31``; a frame of another Dingtek device type is
refused, naming the type. The data type selects the body:

=========  =========  =====  ==========================================================
data type  kind       bytes  body (big-endian)
=========  =========  =====  ==========================================================
``0x01``   heartbeat  23     periodic report: the data body below
``0x02``   status     23     alarm report, sent at once when the parking state or an
                             alarm changes: the same data body
``0x03``   config     16     parameter report: firmware major, minor; upload interval
                             (h); detection interval (min); level threshold (cm);
                             magnet threshold (2 bytes); battery threshold (%);
                             2 reserved
=========  =========  =====  ==========================================================

The data body (bytes 5..21): distance to the target (2 bytes, mm); a byte
whose high nibble is the parking state (non-zero: a vehicle is parked) and
low nibble the ultrasonic level alarm; a byte whose high nibble is the
magnetic alarm and low nibble the low-battery alarm; battery voltage
(2 bytes, 0.01 V); the magnetic field on x, y, z (3 x 2 bytes, signed);
temperature (1 byte, signed, °C); humidity (1 byte, %); frame counter
(2 bytes); 1 reserved byte.

The DO201 documents no error frame: faults arrive as the alarm bits of an
alarm report. ``encode`` maps the simulator's battery percent onto
3.0..3.6 V and raises the battery alarm below 20 % (the DO201's default
battery threshold).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import Frame, FrameKind, Model, Reading, need

NAME = "dingtek-do201"
REFERENCE = ("Dingtek DO201 parking occupancy sensor LoRaWAN protocol (Dingtek Protocol_LoRaWAN "
             "frame 0x80 ... 0x81, data types 0x01/0x02/0x03); DO201 codec and examples in "
             "TheThingsNetwork/lorawan-devices vendor/dingtek/do201.js, do201-codec.yaml")

PORT = 3
HEAD, TAIL = 0x80, 0x81
DO201 = 0x31
# Dingtek device types a frame may name, for the error message only.
DEVICE_TYPES: Mapping[int, str] = {0x01: "DF555", 0x02: "DO200", 0x31: "DO201", 0x32: "DO202"}

HEARTBEAT, ALARM, PARAMETER = 0x01, 0x02, 0x03
DATA_SIZE, PARAMETER_SIZE = 23, 16
HEADER_SIZE = 5

Decoded = tuple[bool | None, float | None, float | None, dict[str, Any]]


def _int(payload: bytes, at: int, size: int, *, signed: bool = False) -> int:
    return int.from_bytes(payload[at:at + size], "big", signed=signed)


def _data(payload: bytes) -> Decoded:
    """Occupied, battery volts, temperature and the other fields of a heartbeat or alarm body."""
    states, alarms = payload[7], payload[8]
    fields = {
        "distance_mm": _int(payload, 5, 2),
        "level_alarm": bool(states & 0x0F),
        "magnet_alarm": bool(alarms >> 4),
        "battery_alarm": bool(alarms & 0x0F),
        "magnet_x": _int(payload, 11, 2, signed=True),
        "magnet_y": _int(payload, 13, 2, signed=True),
        "magnet_z": _int(payload, 15, 2, signed=True),
        "humidity_pct": payload[18],
        "frame_counter": _int(payload, 19, 2),
    }
    return bool(states >> 4), _int(payload, 9, 2) / 100, float(_int(payload, 17, 1, signed=True)), fields


def _parameter(payload: bytes) -> Decoded:
    fields = {
        "firmware": f"{payload[5]}.{payload[6]}",
        "upload_interval_h": payload[7],
        "detection_interval_min": payload[8],
        "level_threshold_cm": payload[9],
        "magnet_threshold": _int(payload, 10, 2),
        "battery_threshold_pct": payload[12],
    }
    return None, None, None, fields


# data type -> (kind, frame size, what the frame is called, decoder of the body)
DATA_TYPES: Mapping[int, tuple[FrameKind, int, str, Callable[[bytes], Decoded]]] = {
    HEARTBEAT: (FrameKind.HEARTBEAT, DATA_SIZE, "heartbeat", _data),
    ALARM: (FrameKind.STATUS, DATA_SIZE, "status (alarm report)", _data),
    PARAMETER: (FrameKind.CONFIG, PARAMETER_SIZE, "parameter", _parameter),
}


def _header(fport: int, payload: bytes) -> int:
    """Check the port, head and device type; the frame's data type."""
    if fport != PORT:
        raise FrameError(f"{NAME}: fPort {fport} is not this model's port ({PORT})")
    need(NAME, fport, payload, HEADER_SIZE, "Dingtek")
    if payload[0] != HEAD:
        raise FrameError(f"{NAME}: fPort {fport}: a Dingtek frame starts with 0x80, not 0x{payload[0]:02X}")
    if payload[2] != DO201:
        seen = DEVICE_TYPES.get(payload[2], "not a known Dingtek device")
        raise FrameError(f"{NAME}: fPort {fport}: device type 0x{payload[2]:02X} ({seen}) is not a "
                         f"DO201 (0x{DO201:02X})")
    return payload[3]


def _framing(fport: int, payload: bytes) -> None:
    """Check the declared length and the tail."""
    if payload[4] != len(payload):
        raise FrameError(f"{NAME}: fPort {fport}: the frame has {len(payload)} bytes but declares "
                         f"{payload[4]}")
    if payload[-1] != TAIL:
        raise FrameError(f"{NAME}: fPort {fport}: a Dingtek frame ends with 0x81, not 0x{payload[-1]:02X}")


def decode(fport: int, payload: bytes) -> Frame:
    """The ``Frame`` one DO201 uplink says; ``FrameError`` for anything else."""
    data_type = _header(fport, payload)
    entry = DATA_TYPES.get(data_type)
    if entry is None:
        raise FrameError(f"{NAME}: fPort {fport}: unknown data type 0x{data_type:02X} "
                         f"(known: 0x01 heartbeat, 0x02 alarm, 0x03 parameter)")
    kind, size, what, body = entry
    need(NAME, fport, payload, size, what)
    _framing(fport, payload)
    occupied, volts, celsius, fields = body(payload)
    return Frame(model=NAME, fport=fport, kind=kind, occupied=occupied, battery_v=volts,
                 temperature_c=celsius, fields=fields)


def _frame(data_type: int, body: bytes) -> bytes:
    size = HEADER_SIZE + len(body) + 1
    return bytes([HEAD, 0x00, DO201, data_type, size]) + body + bytes([TAIL])


def _data_body(reading: Reading) -> bytes:
    pct = 100.0 if reading.battery_pct is None else min(max(reading.battery_pct, 0.0), 100.0)
    centivolts = round(300 + 60 * pct / 100)
    celsius = 20 if reading.temperature_c is None else min(max(round(reading.temperature_c), -128), 127)
    distance, z = (350, 140) if reading.occupied else (2000, -16)
    return b"".join([
        distance.to_bytes(2, "big"),
        bytes([0x10 if reading.occupied else 0x00, 0x01 if pct < 20 else 0x00]),
        centivolts.to_bytes(2, "big"),
        (16).to_bytes(2, "big", signed=True), (-10).to_bytes(2, "big", signed=True),
        z.to_bytes(2, "big", signed=True),
        celsius.to_bytes(1, "big", signed=True), bytes([45]),
        (reading.counter % 0x10000).to_bytes(2, "big"), b"\x00",
    ])


# Reading kind -> data type the DO201 sends for it
ENCODE_TYPES: Mapping[FrameKind, int] = {
    FrameKind.HEARTBEAT: HEARTBEAT, FrameKind.STATUS: ALARM, FrameKind.CONFIG: PARAMETER,
}


def encode(reading: Reading) -> tuple[int, bytes]:
    """The ``(fport, payload)`` a DO201 sends for ``reading``.

    ``heartbeat`` and ``status`` give a heartbeat or an alarm report (``counter``
    is the frame counter), ``config`` a parameter report with the factory
    settings (firmware 1.1, 24 h, 30 min, 60 cm, 60, 20 %).
    """
    data_type = ENCODE_TYPES.get(reading.kind)
    if data_type is None:
        raise FrameError(f"{NAME}: sends no {reading.kind.value} frame (it sends heartbeat, status, config)")
    if data_type == PARAMETER:
        return PORT, _frame(PARAMETER, bytes.fromhex("0101181e3c003c140000"))
    return PORT, _frame(data_type, _data_body(reading))


MODELS: tuple[Model, ...] = (
    Model(name=NAME, vendor="Dingtek", description="DO201 parking occupancy sensor (ultrasonic + magnetic)",
          ports=frozenset({PORT}), decode=decode, encode=encode, reference=REFERENCE),
)
