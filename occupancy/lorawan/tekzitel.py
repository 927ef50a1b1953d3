"""Tekzitel TEKZIPARK radar + magnetometer parking sensor (``tekzitel-tekzipark``), pure decoder and encoder.

Source. Tekzitel publishes no payload document that could be found; its data
sheet (tekzitel.com, "TEKZIPARK Specification Data Sheet 1.0 LoRaWAN") gives
none. The layout below follows the one public description of the frames: the
TEKZIPARK entry Tekzitel contributed to The Things Network's device repository
(``TheThingsNetwork/lorawan-devices``, ``vendor/tekzitel/tekzipark.js`` and
``tekzipark.yaml``, firmware 1.0, hardware 1.0). Field names and meanings are
taken from that codec; where it is silent (what the radar flag means, the
fault codes) the value is passed on raw.

How this works. Every uplink starts with the same three bytes:

- byte 0, flags: bit 7 occupied, bit 5 battery good, bit 4 obstruction,
  bit 3 radar, bit 2 no beacon, bit 1 reset, bit 0 keep-alive;
- byte 1, temperature (°C, signed);
- byte 2, parking id.

================  =========================================================================
fPort             rest of the frame
================  =========================================================================
1 status          optional: beacon RSSI (1 byte, dBm, signed), then the beacons seen,
                  2 bytes each
2 debug           12 bytes in all: magnetic deflection x, y, z and baseline x, y, z
                  (1 byte each, signed), fault code, obstruction level, radar reflection
================  =========================================================================

(fPort 3 carries configuration downlinks only.) The kind of an fPort-1 frame
comes from its flags: ``reset`` set is ``startup`` (the first frame after a
reset), else ``keep-alive`` set is ``heartbeat``, else ``status`` (an
occupancy change). fPort 2 is ``other`` (debug). Both ports state occupancy.
The frames carry no battery level, only the "battery good" flag; ``encode``
clears it below 20 % (a simulation choice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import Frame, FrameKind, Model, Reading, need

NAME = "tekzitel-tekzipark"
REFERENCE = ("no vendor payload document published; follows Tekzitel's TEKZIPARK codec in "
             "TheThingsNetwork/lorawan-devices vendor/tekzitel/tekzipark.js (firmware 1.0)")

PORT_STATUS, PORT_DEBUG = 1, 2
HEAD_SIZE, DEBUG_SIZE = 3, 12

OCCUPIED = 0x80
# flag name -> bit of byte 0 (occupied is the frame's ``occupied``, not a field)
FLAGS: Mapping[str, int] = {
    "battery_good": 0x20, "obstruction": 0x10, "radar": 0x08, "no_beacon": 0x04,
    "reset": 0x02, "keep_alive": 0x01,
}
# debug frame: field name -> byte
DEBUG_FIELDS: Mapping[str, int] = {
    "deflection_x": 3, "deflection_y": 4, "deflection_z": 5,
    "baseline_x": 6, "baseline_y": 7, "baseline_z": 8,
}
DEBUG_RAW: Mapping[str, int] = {"fault_code": 9, "obstruction_level": 10, "radar_reflection": 11}


def _s8(byte: int) -> int:
    return byte - 0x100 if byte > 0x7F else byte


def _kind(flags: int) -> FrameKind:
    if flags & FLAGS["reset"]:
        return FrameKind.STARTUP
    if flags & FLAGS["keep_alive"]:
        return FrameKind.HEARTBEAT
    return FrameKind.STATUS


def _beacons(fport: int, payload: bytes) -> dict[str, Any]:
    """The optional beacon part of a status frame (bytes 3..)."""
    if len(payload) <= HEAD_SIZE:
        return {}
    ids = payload[HEAD_SIZE + 1:]
    if len(ids) % 2:
        raise FrameError(f"{NAME}: fPort {fport}: the beacon list has {len(ids)} bytes, not 2 per beacon")
    return {"beacon_rssi_dbm": _s8(payload[HEAD_SIZE]),
            "beacons": [int.from_bytes(ids[i:i + 2], "big") for i in range(0, len(ids), 2)]}


def _debug(payload: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = {name: _s8(payload[at]) for name, at in DEBUG_FIELDS.items()}
    fields.update({name: payload[at] for name, at in DEBUG_RAW.items()})
    return fields


def decode(fport: int, payload: bytes) -> Frame:
    """The ``Frame`` one TEKZIPARK uplink says; ``FrameError`` for anything else."""
    if fport == PORT_STATUS:
        need(NAME, fport, payload, HEAD_SIZE, "status")
        kind, extra = _kind(payload[0]), _beacons(fport, payload)
    elif fport == PORT_DEBUG:
        need(NAME, fport, payload, DEBUG_SIZE, "debug")
        kind, extra = FrameKind.OTHER, _debug(payload)
    else:
        raise FrameError(f"{NAME}: fPort {fport} is not one of this model's ports (1, 2)")
    flags = payload[0]
    fields: dict[str, Any] = {name: bool(flags & bit) for name, bit in FLAGS.items()}
    fields["parking_id"] = payload[2]
    fields.update(extra)
    return Frame(model=NAME, fport=fport, kind=kind, occupied=bool(flags & OCCUPIED),
                 temperature_c=float(_s8(payload[1])), fields=fields)


# Reading kind -> (fPort, flag bits the frame sets)
ENCODE_KINDS: Mapping[FrameKind, tuple[int, int]] = {
    FrameKind.STATUS: (PORT_STATUS, 0),
    FrameKind.HEARTBEAT: (PORT_STATUS, FLAGS["keep_alive"]),
    FrameKind.STARTUP: (PORT_STATUS, FLAGS["reset"]),
    FrameKind.OTHER: (PORT_DEBUG, 0),
}


def encode(reading: Reading) -> tuple[int, bytes]:
    """The ``(fport, payload)`` a TEKZIPARK sends for ``reading`` (parking id 1, no beacons).

    ``status``, ``heartbeat`` and ``startup`` give a status frame with the
    matching flags, ``other`` a debug frame (fault code 0).
    """
    entry = ENCODE_KINDS.get(reading.kind)
    if entry is None:
        raise FrameError(f"{NAME}: sends no {reading.kind.value} frame "
                         f"(it sends status, heartbeat, startup, other)")
    fport, flags = entry
    if reading.occupied:
        flags |= OCCUPIED
    if reading.battery_pct is None or reading.battery_pct >= 20:
        flags |= FLAGS["battery_good"]
    celsius = 20 if reading.temperature_c is None else min(max(round(reading.temperature_c), -128), 127)
    head = bytes([flags, celsius & 0xFF, 1])
    if fport == PORT_DEBUG:
        deflection = (0x28, 0x10, 0x50) if reading.occupied else (0x01, 0xFF, 0x02)
        return fport, head + bytes(deflection) + bytes([0x05, 0xFB, 0x0A, 0x00, 0x00, 0x3C])
    return fport, head


MODELS: tuple[Model, ...] = (
    Model(name=NAME, vendor="Tekzitel", description="TEKZIPARK radar + magnetometer surface parking sensor",
          ports=frozenset({PORT_STATUS, PORT_DEBUG}), decode=decode, encode=encode, reference=REFERENCE),
)
