"""A simulated sensor set: each space flips at random (seeded) at every read."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING

from occupancy.ids import DeviceId, SpaceRef

if TYPE_CHECKING:
    from gateway.config import SimulatedDevice


class SimulatedAdapter:
    """Every read, each space flips with ``change_probability``; start states are random."""

    kind = "simulated"

    def __init__(self, config: SimulatedDevice) -> None:
        self.device = DeviceId(config.id)
        self.spaces = tuple(config.space_refs())
        self._p = config.change_probability
        self.battery = config.battery
        self._rng = random.Random(config.seed)
        self._states = {s: self._rng.random() < 0.5 for s in self.spaces}

    async def read(self) -> Mapping[SpaceRef, float]:
        for space in self.spaces:
            if self._rng.random() < self._p:
                self._states[space] = not self._states[space]
        return {s: 1.0 if occupied else 0.0 for s, occupied in self._states.items()}

    async def close(self) -> None:
        return None
