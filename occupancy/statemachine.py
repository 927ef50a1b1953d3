"""The occupancy state machine of a gateway: debounce, hysteresis, staleness, heartbeat.

How this works (pure: data in, data out, no clock read behind the caller's
back). A ``Machine`` holds one ``Track`` per space of one device. The caller
feeds it inputs with ``step(machine, input)`` and gets back the next machine
and the events to publish:

- ``Observe(at, scores)`` — one reading of some spaces. A score is 0..1 (a
  bay sensor's coil is 0 or 1, a camera's probability anything between).
  Hysteresis turns a score into a *vote*: ``occupied`` at ``>= enter``,
  ``free`` at ``<= leave``, no vote in the dead band between.
- ``Tick(at)`` — time passes. A space whose last reading is older than
  ``stale_after_s`` becomes ``unknown`` (its device went silent); every
  ``heartbeat_s`` the current state of every space is restated.

Debounce: a vote against the confirmed state makes it a *candidate*; the
candidate is confirmed once voted for in ``confirm_readings`` consecutive
readings spanning at least ``debounce_s``; a vote for the confirmed state or
no vote (dead band) drops it. The first reading of a space that is
``unknown`` is adopted at once: there is no confirmed state to protect.

A confirmed change is stamped with the time of the reading that confirmed it,
not of the first vote: an event must never be older than a heartbeat already
sent for the same space, or the order-independent current state downstream
(latest ``at`` wins) would keep the heartbeat.

The transition table maps (confirmed state, signal) to an action; ``step``
looks the action up and applies it. Time must not go backwards: an input
older than the machine's clock, or a reading of a space the machine does not
track, is an illegal transition and raises ``StateMachineError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

from occupancy import OccupancyError
from occupancy.ids import SpaceRef
from occupancy.model import EventKind, SpaceState


class StateMachineError(OccupancyError, ValueError):
    """An illegal input: time going backwards, an unknown space, a bad policy."""


class Signal(Enum):
    """What one input says about one space."""

    FREE = "free"
    OCCUPIED = "occupied"
    NO_VOTE = "no_vote"  # a reading in the dead band
    SILENT = "silent"  # no reading for stale_after_s


class Action(Enum):
    ADOPT = "adopt"  # take the vote at once (from unknown)
    HOLD = "hold"  # the reading agrees (or abstains): refresh, drop any candidate
    PROPOSE = "propose"  # a vote against the confirmed state: advance the candidate
    EXPIRE = "expire"  # silent too long: become unknown
    IGNORE = "ignore"  # nothing changes (beyond the last-seen time)


_U, _F, _O = SpaceState.UNKNOWN, SpaceState.FREE, SpaceState.OCCUPIED

TRANSITIONS: Mapping[tuple[SpaceState, Signal], Action] = {
    (_U, Signal.FREE): Action.ADOPT,
    (_U, Signal.OCCUPIED): Action.ADOPT,
    (_U, Signal.NO_VOTE): Action.IGNORE,
    (_U, Signal.SILENT): Action.IGNORE,
    (_F, Signal.FREE): Action.HOLD,
    (_F, Signal.OCCUPIED): Action.PROPOSE,
    (_F, Signal.NO_VOTE): Action.HOLD,
    (_F, Signal.SILENT): Action.EXPIRE,
    (_O, Signal.OCCUPIED): Action.HOLD,
    (_O, Signal.FREE): Action.PROPOSE,
    (_O, Signal.NO_VOTE): Action.HOLD,
    (_O, Signal.SILENT): Action.EXPIRE,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds and periods of one device's spaces."""

    enter: float = 0.6
    leave: float = 0.4
    confirm_readings: int = 1
    debounce_s: float = 0.0
    stale_after_s: float = 120.0
    heartbeat_s: float = 300.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.leave <= self.enter <= 1.0:
            raise StateMachineError("policy needs 0 <= leave <= enter <= 1")
        if self.confirm_readings < 1 or self.debounce_s < 0:
            raise StateMachineError("policy needs confirm_readings >= 1 and debounce_s >= 0")
        if self.stale_after_s <= 0 or self.heartbeat_s <= 0:
            raise StateMachineError("policy needs stale_after_s > 0 and heartbeat_s > 0")

    def signal(self, score: float) -> Signal:
        if score >= self.enter:
            return Signal.OCCUPIED
        if score <= self.leave:
            return Signal.FREE
        return Signal.NO_VOTE


@dataclass(frozen=True, slots=True)
class Observe:
    """Readings of some spaces at one time: space → score 0..1."""

    at: datetime
    scores: Mapping[SpaceRef, float]


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: expire silent spaces, restate all when a heartbeat is due."""

    at: datetime


Input = Observe | Tick


@dataclass(frozen=True, slots=True)
class Output:
    """An event to publish: a change (or expiry) or a heartbeat of one space."""

    space: SpaceRef
    state: SpaceState
    at: datetime
    kind: EventKind
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Track:
    """What the machine knows of one space."""

    state: SpaceState = SpaceState.UNKNOWN
    last_seen: datetime | None = None
    candidate: SpaceState | None = None
    since: datetime | None = None
    count: int = 0
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Machine:
    """The state of every space of one device, and the machine's clock."""

    policy: Policy
    tracks: Mapping[SpaceRef, Track]
    now: datetime | None = None
    next_heartbeat: datetime | None = None

    def state(self, space: SpaceRef) -> SpaceState:
        return self.tracks[space].state


def new_machine(spaces: list[SpaceRef] | tuple[SpaceRef, ...], policy: Policy) -> Machine:
    """Every space ``unknown``; the first ``Tick`` sends the first heartbeat."""
    return Machine(policy=policy, tracks={s: Track() for s in spaces})


def with_policy(machine: Machine, policy: Policy) -> Machine:
    """The same tracks under a new policy (a pushed-down config); the heartbeat re-plans."""
    nxt = machine.next_heartbeat
    if nxt is not None and machine.now is not None:
        nxt = min(nxt, machine.now + timedelta(seconds=policy.heartbeat_s))
    return replace(machine, policy=policy, next_heartbeat=nxt)


def with_spaces(machine: Machine, spaces: Iterable[SpaceRef]) -> Machine:
    """The machine watching ``spaces`` too (a camera's new layout): each new one ``unknown``
    until it is read; the spaces it has keep their tracks."""
    added = {s: Track() for s in spaces if s not in machine.tracks}
    return replace(machine, tracks={**machine.tracks, **added}) if added else machine


def step(machine: Machine, event: Input) -> tuple[Machine, list[Output]]:
    """Apply one input; return the next machine and the events it produced."""
    if machine.now is not None and event.at < machine.now:
        raise StateMachineError(f"time went backwards: {event.at} < {machine.now}")
    if isinstance(event, Observe):
        return _observe(machine, event)
    return _tick(machine, event)


def _observe(machine: Machine, event: Observe) -> tuple[Machine, list[Output]]:
    tracks = dict(machine.tracks)
    out: list[Output] = []
    for space, score in event.scores.items():
        if space not in tracks:
            raise StateMachineError(f"no such space on this device: {space}")
        if not 0.0 <= score <= 1.0:
            raise StateMachineError(f"{space}: score {score!r} outside 0..1")
        signal = machine.policy.signal(score)
        track, emitted = _apply(machine.policy, tracks[space], signal, event.at, score)
        tracks[space] = track
        if emitted is not None:
            out.append(Output(space, emitted, event.at, EventKind.CHANGE, score))
    return replace(machine, tracks=tracks, now=event.at), out


def _tick(machine: Machine, event: Tick) -> tuple[Machine, list[Output]]:
    policy, at = machine.policy, event.at
    limit = at - timedelta(seconds=policy.stale_after_s)
    tracks = dict(machine.tracks)
    out: list[Output] = []
    for space, track in machine.tracks.items():
        if track.last_seen is None or track.last_seen <= limit:
            tracks[space], emitted = _apply(policy, track, Signal.SILENT, at, None)
            if emitted is not None:
                out.append(Output(space, emitted, at, EventKind.CHANGE))
    nxt = machine.next_heartbeat
    if nxt is None or at >= nxt:
        out += [Output(s, t.state, at, EventKind.HEARTBEAT, t.score) for s, t in tracks.items()]
        nxt = at + timedelta(seconds=policy.heartbeat_s)
    return replace(machine, tracks=tracks, now=at, next_heartbeat=nxt), out


def _apply(policy: Policy, track: Track, signal: Signal, at: datetime,
           score: float | None) -> tuple[Track, SpaceState | None]:
    """One table lookup and its action: the new track and the state it changed to."""
    action = TRANSITIONS[(track.state, signal)]
    seen = track.last_seen if signal is Signal.SILENT else at
    if action is Action.ADOPT:
        state = SpaceState(signal.value)
        return Track(state=state, last_seen=seen, score=score), state
    if action is Action.EXPIRE:
        return Track(state=SpaceState.UNKNOWN, last_seen=seen), SpaceState.UNKNOWN
    if action is Action.IGNORE:
        return replace(track, last_seen=seen), None
    if action is Action.HOLD:
        return Track(state=track.state, last_seen=seen, score=score), None
    return _propose(policy, track, SpaceState(signal.value), at, score)


def _propose(policy: Policy, track: Track, vote: SpaceState, at: datetime,
             score: float | None) -> tuple[Track, SpaceState | None]:
    if track.candidate is vote and track.since is not None:
        count, since = track.count + 1, track.since
    else:
        count, since = 1, at
    held = (at - since).total_seconds()
    if count >= policy.confirm_readings and held >= policy.debounce_s:
        return Track(state=vote, last_seen=at, score=score), vote
    return Track(track.state, at, vote, since, count, track.score), None
