"""Device adapters: one interface for every kind of device a gateway reads.

An adapter is polled by the gateway (``await adapter.read()``) and returns a
score 0..1 for each of its spaces it could read (1 = occupied): a bay
sensor's coil is 0 or 1, a camera's confirmed state is 0 or 1. It raises
``AdapterError`` when the device cannot be read (unreachable, timed out,
an error response); the gateway counts the error, reports it in ``health``,
keeps polling, and the state machine turns the device's spaces ``unknown``
once they have been silent for the staleness bound. An adapter never stops
the others: each runs in its own task.

Kinds: ``modbus`` (``gateway.adapters.modbus``), ``simulated``
(``gateway.adapters.simulated``), ``camera`` (``gateway.adapters.camera``).
``build_adapter`` makes the one a config entry asks for.

A **push source** is the other shape: devices that speak when they have
something to say, through a connection the gateway keeps (``chirpstack``:
LoRaWAN sensors through the network server's MQTT integration,
``gateway.adapters.chirpstack``). The service runs ``await source.run(sink,
clock)`` as a task of its own; the source calls ``sink(readings)`` on the
event loop with the ``SensorReading``s of its sensors, each a device of its
own (``sensors()``) with its own state machine and health. ``build_source``
makes one from a config entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from gateway import GatewayError
from occupancy.health import LorawanCounts
from occupancy.ids import DeviceId, SpaceRef
from occupancy.lorawan.receiver import SensorReading

if TYPE_CHECKING:
    from gateway.config import (
        CameraDevice,
        ChirpstackDevice,
        GatewayConfig,
        ModbusDevice,
        SimulatedDevice,
    )


class AdapterError(GatewayError):
    """A device could not be read this time (the gateway retries at the next poll)."""


class Adapter(Protocol):
    """A device behind the gateway."""

    @property
    def device(self) -> DeviceId: ...

    @property
    def kind(self) -> str: ...

    @property
    def spaces(self) -> tuple[SpaceRef, ...]: ...

    @property
    def battery(self) -> float | None:
        """Battery level in percent where the device reports one."""
        ...

    async def read(self) -> Mapping[SpaceRef, float]:
        """One reading of the device's spaces; raises ``AdapterError``."""
        ...

    async def close(self) -> None: ...


def build_adapter(config: GatewayConfig,
                  device: ModbusDevice | SimulatedDevice | CameraDevice) -> Adapter:
    """The adapter of one ``devices`` entry of the config."""
    if device.kind == "modbus":
        from gateway.adapters.modbus import ModbusAdapter

        return ModbusAdapter(device)
    if device.kind == "simulated":
        from gateway.adapters.simulated import SimulatedAdapter

        return SimulatedAdapter(device)
    from gateway.adapters.camera import camera_adapter

    return camera_adapter(config, device)


@dataclass(frozen=True, slots=True)
class PushedSensor:
    """A device a push source reads for: its id, kind (in health) and spaces."""

    device: DeviceId
    kind: str
    spaces: tuple[SpaceRef, ...]


ReadingSink = Callable[[Sequence[SensorReading]], None]


class PushSource(Protocol):
    """A connection that delivers readings of its sensors (see the module docstring)."""

    @property
    def device(self) -> DeviceId: ...

    @property
    def kind(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    @property
    def retries(self) -> int:
        """Waits before another connection attempt (refused, unreachable, lost)."""
        ...

    def sensors(self) -> Sequence[PushedSensor]: ...

    def counts(self) -> LorawanCounts: ...

    async def run(self, sink: ReadingSink, clock: Callable[[], datetime]) -> None:
        """Deliver readings to ``sink`` until cancelled; close the connection on the way out."""
        ...


def build_source(config: GatewayConfig, device: ChirpstackDevice) -> PushSource:
    """The push source of one ``devices`` entry of the config."""
    from gateway.adapters.chirpstack import ChirpstackSource

    return ChirpstackSource(config, device)
