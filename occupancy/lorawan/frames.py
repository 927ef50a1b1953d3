"""The types every LoRaWAN decoder shares: a decoded ``Frame`` and a ``Model``.

A decoder turns one uplink's FRMPayload (the bytes, after the network
server's decryption) and its fPort into a ``Frame``: what kind of frame it
is, whether it says the bay is occupied (``None`` when the frame says
nothing about occupancy), the health values every model may report under
one name (battery, temperature), and everything else the frame carries in
``fields`` (firmware version, counters, error codes, configuration), named
in snake_case with units in the name (``_s``, ``_v``, ``_c``, ``_pct``).

``Reading`` is what a simulated sensor wants to say; a model's ``encode``
makes the bytes the real device would send for it, so simulators publish
real frames and every decoder is table-tested against its own inverse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from occupancy.lorawan import FrameError


class FrameKind(StrEnum):
    """What a frame is for."""

    STATUS = "status"  # sent when occupancy changes
    HEARTBEAT = "heartbeat"  # periodic keep-alive, usually restating occupancy
    STARTUP = "startup"  # after power-on, reset or (re)join: firmware, settings
    CONFIG = "config"  # a configuration report or the answer to a downlink
    ERROR = "error"  # the device reports a fault
    OTHER = "other"  # anything else the vendor documents (debug, calibration, ...)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded uplink frame."""

    model: str
    fport: int
    kind: FrameKind
    occupied: bool | None = None
    battery_pct: float | None = None
    battery_v: float | None = None
    temperature_c: float | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the common keys (``null`` where unknown), then ``fields``."""
        out: dict[str, Any] = {
            "device": self.model, "fport": self.fport, "kind": self.kind.value,
            "occupied": self.occupied, "battery_pct": self.battery_pct,
            "battery_v": self.battery_v, "temperature_c": self.temperature_c,
        }
        out.update({k: v for k, v in self.fields.items() if k not in out})
        return out


@dataclass(frozen=True, slots=True)
class Reading:
    """What a (simulated) sensor says in one frame: the input of a model's ``encode``."""

    kind: FrameKind = FrameKind.STATUS
    occupied: bool = False
    battery_pct: float | None = None
    temperature_c: float | None = None
    counter: int = 0  # a frame or event counter, for models whose frames carry one


Decode = Callable[[int, bytes], Frame]
Encode = Callable[[Reading], tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class Model:
    """A supported device model: its name, what it is, its ports, decoder and encoder."""

    name: str
    vendor: str
    description: str
    ports: frozenset[int]
    decode: Decode
    encode: Encode
    reference: str = ""  # the vendor document the decoder follows

    def decode_frame(self, fport: int, payload: bytes) -> Frame:
        """``decode`` with the port checked first (``FrameError`` names the ports it knows)."""
        if fport not in self.ports:
            known = ", ".join(str(p) for p in sorted(self.ports))
            raise FrameError(f"{self.name}: fPort {fport} is not one of this model's ports ({known})")
        return self.decode(fport, payload)


def need(model: str, fport: int, payload: bytes, size: int, what: str) -> None:
    """``FrameError`` unless ``payload`` has at least ``size`` bytes (for ``what``)."""
    if len(payload) < size:
        raise FrameError(f"{model}: fPort {fport}: a {what} frame has at least {size} bytes, "
                         f"got {len(payload)}")
