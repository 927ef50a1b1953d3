"""The scenario's faults over a run: what a faulty sensor says, a gateway's clock
offset, and the gateway faults the shell must carry out (pure).

``Faults`` answers the engine at each tick: ``sensor_says`` (the truth, a
flapped state, or ``None`` for a silent sensor), ``skew`` (seconds a
gateway's clock is off) and ``actions`` (uplink cut/restore, duplicate
burst, malformed payloads starting or ending in the tick). Every fault is
logged in the truth when it starts, with the windows in which the verifier
excuses a space that differs from the truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from occupancy.model import SpaceState
from simulators import SimulationError
from simulators.scenario import GatewayFault, Scenario, SpaceFault
from simulators.truth import FaultEntry, SpaceKey, Truth

if TYPE_CHECKING:
    from simulators.engine import Target

GwKey = tuple[str, str]  # tenant, gateway


@dataclass(frozen=True, slots=True)
class Action:
    """Something the shell must do at ``at``: ``uplink_cut``/``uplink_restore``/
    ``duplicate_burst``/``malformed`` on ``gateway``."""

    at: datetime
    kind: str
    gateway: GwKey
    count: int = 0


class Faults:
    """See the module docstring; ``targets`` are the engine's simulated sites."""

    def __init__(self, scenario: Scenario, targets: list[Target], truth: Truth, *,
                 start: datetime, tick: timedelta, shift: timedelta) -> None:
        self.scenario, self.targets, self.truth = scenario, targets, truth
        self.start, self.tick, self.shift = start, tick, shift

    def stamp(self, sim_t: datetime) -> datetime:
        return sim_t + self.shift

    def sensor_says(self, key: SpaceKey, sim_t: datetime) -> SpaceState | None:
        """What the sensor of ``key`` reports at ``sim_t``; ``None`` when it is silent."""
        offset = (sim_t - self.start).total_seconds()
        truth = self.truth.state_at(key, self.stamp(sim_t))
        for f in self._space_faults(key):
            if f.kind == "silent" and offset >= f.start_s:
                self.truth.silent_from.setdefault(key, self.stamp(self.start + timedelta(seconds=f.start_s)))
                return None
            flipped = int((offset - f.start_s) // f.period_s) % 2 == 0
            if f.kind == "flapping" and f.start_s <= offset < f.end_s and flipped:
                return SpaceState.FREE if truth is SpaceState.OCCUPIED else SpaceState.OCCUPIED
        return truth

    def _space_faults(self, key: SpaceKey) -> Iterator[SpaceFault]:
        for f in self.scenario.faults:
            if isinstance(f, SpaceFault) and f.site == key[1] and key[2] in f.spaces:
                yield f

    def skew(self, t: Target, sim_t: datetime) -> int:
        """Seconds the gateway's clock is off at ``sim_t`` (0: right).

        The shell applies it: an accelerated run stamps events in the past, so a
        clock *ahead* is measured against ingest's real clock (what it checks)."""
        offset = (sim_t - self.start).total_seconds()
        for f in self.scenario.faults:
            if (isinstance(f, GatewayFault) and f.kind == "clock_skew" and f.gateway == t.gateway
                    and f.start_s <= offset < f.end_s):
                return f.offset_s
        return 0

    def actions(self, sim_t: datetime) -> list[Action]:
        """Gateway faults starting or ending in this tick ``(t - tick, t]``; each fault logged."""
        now = (sim_t - self.start).total_seconds()
        before = now - self.tick.total_seconds()
        at = self.stamp(sim_t)
        out = []
        for f in self.scenario.faults:
            if before < f.start_s <= now:
                self._log(f)
                if isinstance(f, GatewayFault) and f.kind != "clock_skew":
                    kind = "uplink_cut" if f.kind == "uplink_loss" else f.kind
                    out.append(Action(at, kind, self._gw(f.gateway), f.count))
            if isinstance(f, GatewayFault) and f.kind == "uplink_loss" and before < f.end_s <= now:
                out.append(Action(at, "uplink_restore", self._gw(f.gateway)))
        return out

    def _gw(self, gateway: str) -> GwKey:
        for t in self.targets:
            if t.gateway == gateway:
                return t.gw
        raise SimulationError(f"a fault names gateway {gateway!r}, which simulates no site")

    def _log(self, f: SpaceFault | GatewayFault) -> None:
        at = self.stamp(self.start + timedelta(seconds=f.start_s))
        until = self.stamp(self.start + timedelta(seconds=f.end_s)) if f.end_s > f.start_s else None
        if isinstance(f, SpaceFault):
            target, detail = f"{f.site}/{','.join(f.spaces)}", ""
            tenant = next(t.tenant for t in self.targets if t.site.id == f.site)
            if f.kind == "flapping" and until is not None:
                for space in f.spaces:
                    self.truth.excused[(tenant, f.site, space)].append(
                        (at, until + self.tick * 2))
        else:
            target = f.gateway
            detail = {"clock_skew": f"{f.offset_s:+d} s", "duplicate_burst": f"{f.count} events",
                      "malformed": f"{f.count} payloads"}.get(f.kind, "")
            if f.kind == "clock_skew" and until is not None:
                self._excuse_gateway(f.gateway, at, until + timedelta(seconds=max(f.offset_s, 0))
                                     + timedelta(seconds=self.scenario.heartbeat_s) + self.tick)
        self.truth.faults.append(FaultEntry(at, until, f.kind, target, detail))

    def _excuse_gateway(self, gateway: str, start: datetime, end: datetime) -> None:
        for t in self.targets:
            if t.gateway == gateway:
                for space in t.spaces:
                    self.truth.excused[(t.tenant, t.site.id, space)].append((start, end))
