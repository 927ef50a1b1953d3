"""Readings of devices → events to store: one occupancy state machine per device.

How this works (pure: the caller passes the time, nothing here does I/O).
``DeviceMachines`` holds one ``occupancy.statemachine.Machine`` per device,
with that device's ``Policy`` and event ``Source``. ``observe(key, at,
scores)`` steps the device's machine with one reading (a bay sensor's 0/1, a
camera frame's per-space probabilities); ``tick(at)`` steps every machine
with ``Tick(at)`` (silent spaces expire, heartbeats fall due). Both return
the ``EventDraft``s the machines produced, in order, for the outbox.

The gateway service feeds it what its adapters read in real time; the
simulators feed it what their simulated sensors and cameras read in
simulated time. Either way a space's state is decided by one file,
``occupancy/statemachine.py``; this module only keeps the machines and turns
their outputs into drafts.

A camera's output carries a confidence (the confirming reading's probability
of the state it reports); a sensor's (a 0/1 reading) carries none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from occupancy.ids import DeviceId, SpaceRef
from occupancy.model import EventKind, Source, SpaceState
from occupancy.statemachine import (
    Machine,
    Observe,
    Output,
    Policy,
    Tick,
    new_machine,
    step,
    with_policy,
    with_spaces,
)

# A camera's default debounce: this many consecutive frames confirm a change
# (a person walking through a bay, a passing shadow, last one or two frames).
CAMERA_CONFIRM_READINGS = 3


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An observation that has no ``seq`` yet: the outbox gives it one."""

    space: SpaceRef
    state: SpaceState
    at: datetime
    source: Source
    confidence: float | None = None
    device: DeviceId | None = None
    kind: EventKind = EventKind.CHANGE


@dataclass(frozen=True, slots=True)
class _Device:
    machine: Machine
    source: Source
    device: DeviceId | None


class DeviceMachines:
    """The state machines of a gateway's devices, keyed by the caller's name for each."""

    def __init__(self) -> None:
        self._devices: dict[str, _Device] = {}

    def add(self, key: str, spaces: Iterable[SpaceRef], policy: Policy, source: Source, *,
            device: DeviceId | None = None, start: datetime | None = None) -> None:
        """A device whose spaces are all ``unknown``; ``device`` is what its events name.

        With ``start``, the first heartbeat is due one period after it: the
        first readings go out as changes, not as a heartbeat of all-unknown.
        """
        machine = new_machine(tuple(spaces), policy)
        if start is not None:
            machine = replace(machine, next_heartbeat=start + timedelta(seconds=policy.heartbeat_s))
        self._devices[key] = _Device(machine, source, device)

    def __contains__(self, key: object) -> bool:
        return key in self._devices

    def keys(self) -> list[str]:
        return list(self._devices)

    def machine(self, key: str) -> Machine:
        return self._devices[key].machine

    def observe(self, key: str, at: datetime, scores: Mapping[SpaceRef, float]) -> list[EventDraft]:
        """One reading of device ``key``: the changes it confirmed."""
        return self._step(key, Observe(at, scores))

    def tick(self, at: datetime) -> list[EventDraft]:
        """Time passes for every device: expiries and due heartbeats."""
        return [d for drafts in self.tick_each(at).values() for d in drafts]

    def tick_each(self, at: datetime) -> dict[str, list[EventDraft]]:
        """``tick``, with what each device produced under its key."""
        return {key: self._step(key, Tick(at)) for key in self._devices}

    def widen(self, key: str, spaces: Iterable[SpaceRef]) -> None:
        """Device ``key`` watches ``spaces`` too (a camera whose layout file changed)."""
        dev = self._devices[key]
        self._devices[key] = replace(dev, machine=with_spaces(dev.machine, spaces))

    def retune(self, heartbeat_s: float | None, stale_after_s: float | None) -> None:
        """New periods for every device (a pushed-down ``cmd``); ``None`` keeps one."""
        for key, dev in self._devices.items():
            old = dev.machine.policy
            policy = replace(old, heartbeat_s=heartbeat_s or old.heartbeat_s,
                             stale_after_s=stale_after_s or old.stale_after_s)
            self._devices[key] = replace(dev, machine=with_policy(dev.machine, policy))

    def _step(self, key: str, event: Observe | Tick) -> list[EventDraft]:
        dev = self._devices[key]
        machine, outputs = step(dev.machine, event)
        self._devices[key] = replace(dev, machine=machine)
        return [self._draft(dev, o) for o in outputs]

    @staticmethod
    def _draft(dev: _Device, out: Output) -> EventDraft:
        confidence = None
        if dev.source is Source.CAMERA and out.score is not None and out.state is not SpaceState.UNKNOWN:
            p = out.score if out.state is SpaceState.OCCUPIED else 1.0 - out.score
            confidence = round(p, 4)
        return EventDraft(out.space, out.state, out.at, dev.source, confidence, dev.device, out.kind)
