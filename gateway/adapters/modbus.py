"""Modbus TCP bay sensors: one coil, discrete input or register per bay, polled.

Indoor parking-guidance systems expose each bay's detector (ultrasonic or
magnetic) as a coil or register on a Modbus TCP bus. The adapter reads the
configured addresses in as few requests as possible (``plan_reads`` merges
addresses into spans, within Modbus' per-request limits) and maps each
value to a score: non-zero = occupied (``invert`` flips it). pymodbus errors
(connection refused, timeout, exception response) become ``AdapterError``;
the next read reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.adapters import AdapterError
from occupancy.ids import DeviceId, SpaceRef

if TYPE_CHECKING:
    from gateway.config import ModbusDevice

log = logging.getLogger(__name__)

# The most a single request may read (Modbus application protocol v1.1b3, 6.1-6.4).
MAX_BITS = 2000
MAX_REGISTERS = 125


def plan_reads(addresses: Sequence[int], max_span: int, max_gap: int = 16) -> list[tuple[int, int]]:
    """``(start, count)`` requests covering every address; holes up to ``max_gap`` are read through."""
    spans: list[tuple[int, int]] = []
    for a in sorted(set(addresses)):
        if spans:
            start, count = spans[-1]
            end = start + count
            if a - end <= max_gap and a - start + 1 <= max_span:
                spans[-1] = (start, a - start + 1)
                continue
        spans.append((a, 1))
    return spans


class ModbusAdapter:
    """A Modbus TCP device (``unit``) whose ``table`` holds one value per bay."""

    kind = "modbus"
    battery: float | None = None  # wired bus sensors have no battery

    def __init__(self, config: ModbusDevice) -> None:
        self._config = config
        self.device = DeviceId(config.id)
        self._addresses = config.address_map()
        self.spaces = tuple(self._addresses)
        bits = config.table in ("coils", "discrete_inputs")
        self._plan = plan_reads(list(self._addresses.values()), MAX_BITS if bits else MAX_REGISTERS)
        self._client = AsyncModbusTcpClient(config.host, port=config.port, timeout=config.timeout_s,
                                            retries=0, reconnect_delay=0)

    async def read(self) -> Mapping[SpaceRef, float]:
        values: dict[int, int] = {}
        try:
            if not self._client.connected and not await self._client.connect():
                raise AdapterError(f"cannot connect to {self._config.host}:{self._config.port}")
            for start, count in self._plan:
                values.update(await self._read_span(start, count))
        except (ModbusException, OSError, TimeoutError) as exc:
            self._client.close()
            raise AdapterError(f"{self._config.host}:{self._config.port}: {exc}") from exc
        flip = self._config.invert
        return {s: 1.0 if bool(values[a]) != flip else 0.0 for s, a in self._addresses.items()}

    async def _read_span(self, start: int, count: int) -> dict[int, int]:
        unit, table = self._config.unit, self._config.table
        call: Any = {
            "coils": self._client.read_coils,
            "discrete_inputs": self._client.read_discrete_inputs,
            "holding_registers": self._client.read_holding_registers,
            "input_registers": self._client.read_input_registers,
        }[table]
        response = await asyncio.wait_for(call(start, count=count, device_id=unit),
                                          self._config.timeout_s * 2)
        if response.isError():
            raise AdapterError(f"{table} {start}+{count} of unit {unit}: {response}")
        raw = response.bits if table in ("coils", "discrete_inputs") else response.registers
        return {start + i: int(v) for i, v in enumerate(raw[:count])}

    async def close(self) -> None:
        self._client.close()
