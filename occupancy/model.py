"""Domain values: space states, event sources and the occupancy event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from occupancy.ids import DeviceId, SpaceRef


class SpaceState(StrEnum):
    """What a space is, as last observed."""

    FREE = "free"
    OCCUPIED = "occupied"
    UNKNOWN = "unknown"


class Source(StrEnum):
    """What kind of device observed a state."""

    SENSOR = "sensor"
    CAMERA = "camera"
    LORAWAN = "lorawan"
    MANUAL = "manual"
    SIMULATOR = "simulator"


class EventKind(StrEnum):
    """A state change, or a periodic restatement of the current state."""

    CHANGE = "change"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True, slots=True)
class OccupancyEvent:
    """One observation of one space by one gateway.

    ``(gateway, seq)`` identifies it everywhere: a resent event is the same event.
    """

    seq: int
    space: SpaceRef
    state: SpaceState
    at: datetime
    source: Source
    confidence: float | None = None
    device: DeviceId | None = None
    kind: EventKind = EventKind.CHANGE
