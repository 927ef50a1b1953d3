"""Temporal smoothing: per-space hysteresis over consecutive detector scores.

How this works: each space has a confirmed state and, possibly, a
*candidate* state that it is trying to reach. A score votes for
``occupied`` when ``p >= enter``, for ``free`` when ``p <= leave``, and for
nothing in between (the dead band keeps the current course). A candidate is
confirmed once it has been voted for in ``confirm_frames`` consecutive
frames *and* for at least ``min_seconds``; one vote the other way, or a
score in the dead band, resets it. So a person walking through a bay or a
cloud shadow passing over it (one or two frames) never becomes a change.

The first confirmed observation of a space (after the same confirmation)
sets its initial state and is reported as a change from ``unknown``.

The table (state, vote) → action::

    confirmed  vote        action
    X          X           drop candidate
    X          Y != X      candidate Y: count += 1, confirm when count and age allow
    X          none        drop candidate
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from occupancy.vision.errors import VisionError

Confirmed = Literal["free", "occupied", "unknown"]
Vote = Literal["free", "occupied"]


@dataclass(frozen=True, slots=True)
class SmoothingConfig:
    """Hysteresis thresholds and how long a new state must hold before it counts."""

    enter: float = 0.6
    leave: float = 0.4
    confirm_frames: int = 3
    min_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.leave <= self.enter <= 1.0:
            raise VisionError("smoothing needs 0 <= leave <= enter <= 1")
        if self.confirm_frames < 1 or self.min_seconds < 0:
            raise VisionError("confirm_frames must be >= 1 and min_seconds >= 0")

    def vote(self, probability: float) -> Vote | None:
        """Which state a score votes for, or ``None`` in the dead band."""
        if probability >= self.enter:
            return "occupied"
        if probability <= self.leave:
            return "free"
        return None


@dataclass(frozen=True, slots=True)
class Change:
    """A confirmed state change of one space."""

    space_id: str
    previous: Confirmed
    state: Vote
    at: datetime
    probability: float


@dataclass(frozen=True, slots=True)
class _Track:
    state: Confirmed = "unknown"
    candidate: Vote | None = None
    since: datetime | None = None
    count: int = 0
    total: float = 0.0


@dataclass
class Hysteresis:
    """Per-space hysteresis state machine; feed it scores with :meth:`step`."""

    config: SmoothingConfig = field(default_factory=SmoothingConfig)
    _tracks: dict[str, _Track] = field(default_factory=dict, repr=False)

    def state(self, space_id: str) -> Confirmed:
        """The confirmed state of a space (``unknown`` before its first confirmation)."""
        return self._tracks.get(space_id, _Track()).state

    def step(self, scores: Mapping[str, float], at: datetime) -> list[Change]:
        """Take one frame's scores (space id → probability); return confirmed changes.

        The change's ``at`` is the time of the first frame that voted for the new
        state (when it really happened), and ``probability`` is the mean score
        of the confirming frames.
        """
        changes = []
        for space_id, probability in scores.items():
            track, change = self._advance(space_id, float(probability), at)
            self._tracks[space_id] = track
            if change is not None:
                changes.append(change)
        return changes

    def _advance(self, space_id: str, p: float, at: datetime) -> tuple[_Track, Change | None]:
        track = self._tracks.get(space_id, _Track())
        vote = self.config.vote(p)
        if vote is None or vote == track.state:
            return replace(track, candidate=None, since=None, count=0, total=0.0), None
        if vote != track.candidate or track.since is None:
            track = _Track(track.state, vote, at, 0, 0.0)
        since = track.since or at
        track = replace(track, count=track.count + 1, total=track.total + p)
        old_enough = (at - since).total_seconds() >= self.config.min_seconds
        if track.count < self.config.confirm_frames or not old_enough:
            return track, None
        change = Change(space_id, track.state, vote, since, track.total / track.count)
        return _Track(vote), change
