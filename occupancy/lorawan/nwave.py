"""Nwave parking sensors (NPS405 "G4", surface and flush mount; NPS310): frames both ways.

How this works: like Bosch, Nwave says what a frame is by its fPort; each
model has a table port → reader, and the readers share what the generations
share. Occupancy is always bit 0 of a frame's first byte.

NPS405 (Smart Parking Sensor G4, firmware 2.4.x)::

    port 1   parking status  1 byte: bit 0 occupied, bits 7..1 the compressed
                             duration of the previous state (below)
    port 2   heartbeat       byte 0: bit 0 occupied, bits 7..1 hardware health
                             (0 = no fault found); byte 1 battery, 2500 + 4·value mV;
                             byte 2 temperature, signed value / 2 + 10 °C
    port 3   startup         5 bytes: firmware version 0.1.2, reset cause 3,
                             byte 4 bit 0 occupied (after every start, reboot, re-join)
    port 6   debug           vendor-internal bytes, kept as hex
    port 10  SDI tag         a driver's tag registered at the bay: byte 0 as in
             registration    port 1 when bit 0 is set (occupancy unknown when it is
                             not); 5 bytes: tag id in bytes 1-4; 6 bytes and more:
                             byte 1 the tag's battery (value / 10 V), tag id 2-5

NPS310 (the previous generation)::

    port 1   parking status  1 byte: bit 0 occupied
    port 2   heartbeat       1 byte: bit 0 occupied
    port 3   startup         as NPS405, with its own reset cause table
    port 6   debug           kept as hex

The compressed previous-state duration (7 bits, minutes): 0-89 exact;
90-119 → 90 + 5·(v − 90) (± 4 min); 120-126 → 240 + 60·(v − 120) (± 59 min);
127 → more than 10 hours (overflow).

Layouts follow Nwave's "Nwave LoRaWAN Parking Sensor - Getting Started"
(application protocol, section 4) and Nwave's codecs in the TTN device
repository (``vendor/nwave/nps405.js``, ``nps310sm.js``) with their examples.
The heartbeat's battery formula is Nwave's (third-party converters print other
voltages for the same byte); the hardware health is read from bits 7..1, beside
the occupancy bit (Nwave's codec masks 0x7F, which counts the occupancy bit
too). Frames longer than their layout are accepted and the extra bytes ignored
(the G4 heartbeat already carries three bytes the documents leave unnamed, and
the tag registration grew a battery byte). Unknown reset causes are reported as
``unknown`` beside the raw code; they do not fail the frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import Frame, FrameKind, Model, Reading, need

NPS405 = "nwave-nps405"
NPS310 = "nwave-nps310"
REFERENCE_NPS405 = ("Nwave LoRaWAN Parking Sensor - Getting Started (application protocol); "
                    "Nwave codec nps405.js (TTN lorawan-devices, firmware 2.4.9)")
REFERENCE_NPS310 = ("Nwave LoRaWAN Parking Sensor - Getting Started (application protocol); "
                    "Nwave codec nps310sm.js (TTN lorawan-devices)")

# Startup byte 3, per generation.
RESET_CAUSES_NPS405: Mapping[int, str] = {
    0: "rejoining_lorawan_network",
    1: "watchdog",
    2: "power_on",
    3: "user_request",
    6: "brownout",
    7: "other",
}
RESET_CAUSES_NPS310: Mapping[int, str] = {
    1: "watchdog",
    2: "power_on",
    3: "user_request",
    4: "brownout",
    5: "other",
}

# The previous-state duration's compression: (first code, base minutes, step, error).
_DURATION_BANDS: tuple[tuple[int, int, int, int], ...] = (
    (120, 240, 60, 59),
    (90, 90, 5, 4),
    (0, 0, 1, 0),
)
_DURATION_OVERFLOW = 127

# Battery health thresholds in mV (critical below the first, low below the second),
# lower in the cold (below -5 °C) where a lithium cell's voltage sags.
_BATTERY_WARM = (2900, 3000)
_BATTERY_COLD = (2800, 2900)
_COLD_C = -5.0

# What our encoder sends: the firmware and, for a heartbeat, a battery mapped
# from ``Reading.battery_pct`` linearly onto 2.9-3.5 V.
FIRMWARE_NPS405 = (2, 4, 9)
FIRMWARE_NPS310 = (1, 13, 0)
_SIM_BATTERY_V = (2.9, 3.5)


def _s8(byte: int) -> int:
    return byte - 0x100 if byte & 0x80 else byte


def _occupied(byte: int) -> bool:
    return bool(byte & 0x01)


def previous_state(code: int) -> dict[str, Any]:
    """The fields a 7-bit compressed previous-state duration stands for."""
    if code >= _DURATION_OVERFLOW:
        return {"previous_state_min": 660, "previous_state_error_min": None,
                "previous_state_overflow": True}
    first, base, step, error = next(b for b in _DURATION_BANDS if code >= b[0])
    return {"previous_state_min": base + (code - first) * step, "previous_state_error_min": error,
            "previous_state_overflow": False}


def battery_health(millivolts: int, temperature_c: float) -> str:
    """``normal``, ``low`` or ``critical`` by Nwave's thresholds for that temperature."""
    critical, low = _BATTERY_COLD if temperature_c < _COLD_C else _BATTERY_WARM
    if millivolts < critical:
        return "critical"
    return "low" if millivolts < low else "normal"


def _status_g4(model: str, fport: int, p: bytes) -> Frame:
    need(model, fport, p, 1, "parking status")
    return Frame(model, fport, FrameKind.STATUS, occupied=_occupied(p[0]),
                 fields=previous_state(p[0] >> 1))


def _heartbeat_g4(model: str, fport: int, p: bytes) -> Frame:
    need(model, fport, p, 3, "heartbeat")
    millivolts = 2500 + 4 * p[1]
    temperature = _s8(p[2]) / 2 + 10
    fields = {"hw_health_status": p[0] >> 1,
              "battery_health": battery_health(millivolts, temperature)}
    return Frame(model, fport, FrameKind.HEARTBEAT, occupied=_occupied(p[0]),
                 battery_v=millivolts / 1000, temperature_c=temperature, fields=fields)


def _status_310(model: str, fport: int, p: bytes) -> Frame:
    need(model, fport, p, 1, "parking status")
    return Frame(model, fport, FrameKind.STATUS, occupied=_occupied(p[0]))


def _heartbeat_310(model: str, fport: int, p: bytes) -> Frame:
    need(model, fport, p, 1, "heartbeat")
    return Frame(model, fport, FrameKind.HEARTBEAT, occupied=_occupied(p[0]))


def _startup(causes: Mapping[int, str]) -> Callable[[str, int, bytes], Frame]:
    def read(model: str, fport: int, p: bytes) -> Frame:
        need(model, fport, p, 5, "startup")
        fields = {"firmware_version": f"{p[0]}.{p[1]}.{p[2]}",
                  "reset_cause": causes.get(p[3], "unknown"), "reset_cause_code": p[3]}
        return Frame(model, fport, FrameKind.STARTUP, occupied=_occupied(p[4]), fields=fields)
    return read


def _debug(model: str, fport: int, p: bytes) -> Frame:
    return Frame(model, fport, FrameKind.OTHER, fields={"debug_hex": p.hex()})


def _tag_registration(model: str, fport: int, p: bytes) -> Frame:
    need(model, fport, p, 5, "SDI tag registration")
    fields: dict[str, Any] = {"tag_id": p[1:5].hex().upper(), "tag_battery_v": None}
    if len(p) >= 6:
        fields = {"tag_id": p[2:6].hex().upper(), "tag_battery_v": p[1] / 10}
    occupied: bool | None = None
    if _occupied(p[0]):
        occupied = True
        fields.update(previous_state(p[0] >> 1))
    return Frame(model, fport, FrameKind.OTHER, occupied=occupied, fields=fields)


Reader = Callable[[str, int, bytes], Frame]

_NPS405_READERS: Mapping[int, Reader] = {
    1: _status_g4, 2: _heartbeat_g4, 3: _startup(RESET_CAUSES_NPS405), 6: _debug, 10: _tag_registration,
}
_NPS310_READERS: Mapping[int, Reader] = {
    1: _status_310, 2: _heartbeat_310, 3: _startup(RESET_CAUSES_NPS310), 6: _debug,
}


def _decoder(model: str, readers: Mapping[int, Reader]) -> Callable[[int, bytes], Frame]:
    def decode(fport: int, payload: bytes) -> Frame:
        reader = readers.get(fport)
        if reader is None:
            raise FrameError(f"{model}: fPort {fport} carries no uplink of this model")
        return reader(model, fport, bytes(payload))
    return decode


decode_nps405 = _decoder(NPS405, _NPS405_READERS)
decode_nps310 = _decoder(NPS310, _NPS310_READERS)


def _battery_byte(model: str, pct: float | None) -> int:
    if pct is None:
        pct = 100.0
    if not math.isfinite(pct):
        raise FrameError(f"{model}: battery {pct} % cannot be encoded")
    low, high = _SIM_BATTERY_V
    volts = low + (high - low) * max(0.0, min(100.0, pct)) / 100
    return max(0, min(255, round((volts * 1000 - 2500) / 4)))


def _temperature_byte(model: str, celsius: float | None) -> int:
    if celsius is None:
        celsius = 15.0
    if not math.isfinite(celsius):
        raise FrameError(f"{model}: temperature {celsius} cannot be encoded")
    return max(-128, min(127, round((celsius - 10) * 2))) & 0xFF


def encode_nps405(r: Reading) -> tuple[int, bytes]:
    """The ``(fport, payload)`` an NPS405 sends for ``r``.

    STATUS (previous state 0 min), HEARTBEAT (battery from ``battery_pct``,
    temperature from ``temperature_c``, no fault) and STARTUP (power on, firmware
    2.4.9) carry ``occupied``; OTHER is an SDI tag registration (tag id from
    ``counter``), occupied when ``occupied`` is set, else saying nothing of it.
    The sensor sends no dedicated error or configuration frame: ``FrameError``.
    """
    occ = int(r.occupied)
    if r.kind is FrameKind.STATUS:
        return 1, bytes([occ])
    if r.kind is FrameKind.HEARTBEAT:
        battery = _battery_byte(NPS405, r.battery_pct)
        return 2, bytes([occ, battery, _temperature_byte(NPS405, r.temperature_c)])
    if r.kind is FrameKind.STARTUP:
        return 3, bytes([*FIRMWARE_NPS405, 2, occ])
    if r.kind is FrameKind.OTHER:
        return 10, bytes([occ, 36]) + (r.counter & 0xFFFFFFFF).to_bytes(4, "big")
    raise FrameError(f"{NPS405}: the sensor sends no {r.kind.value} frame")


def encode_nps310(r: Reading) -> tuple[int, bytes]:
    """The ``(fport, payload)`` an NPS310 sends for ``r`` (STATUS, HEARTBEAT, STARTUP only)."""
    occ = int(r.occupied)
    if r.kind is FrameKind.STATUS:
        return 1, bytes([occ])
    if r.kind is FrameKind.HEARTBEAT:
        return 2, bytes([occ])
    if r.kind is FrameKind.STARTUP:
        return 3, bytes([*FIRMWARE_NPS310, 2, occ])
    raise FrameError(f"{NPS310}: the sensor sends no {r.kind.value} frame")


ENCODABLE: Mapping[str, frozenset[FrameKind]] = {
    NPS405: frozenset({FrameKind.STATUS, FrameKind.HEARTBEAT, FrameKind.STARTUP, FrameKind.OTHER}),
    NPS310: frozenset({FrameKind.STATUS, FrameKind.HEARTBEAT, FrameKind.STARTUP}),
}

MODELS: tuple[Model, ...] = (
    Model(name=NPS405, vendor="Nwave",
          description="Smart Parking Sensor G4 NPS405 (surface and flush mount)",
          ports=frozenset(_NPS405_READERS), decode=decode_nps405, encode=encode_nps405,
          reference=REFERENCE_NPS405),
    Model(name=NPS310, vendor="Nwave", description="Smart Parking Sensor NPS310 (previous generation)",
          ports=frozenset(_NPS310_READERS), decode=decode_nps310, encode=encode_nps310,
          reference=REFERENCE_NPS310),
)
