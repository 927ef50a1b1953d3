"""Ground truth of a run: the true state of every space over time, and the faults.

Times are the stamped times of the events (what the database and the API
see). ``expected_at`` is what a correct pipeline must report: the truth,
except a sensor gone silent, which must turn ``unknown`` once its last
observation is older than the site's staleness bound (or the device's own,
``space_stale_after``: a LoRaWAN sensor that speaks hourly). ``excused`` names the
windows in which a space may legitimately differ from the truth (a flapping
sensor, a skewed clock, a camera's confirmation delay), so the verifier does
not count them against the pipeline.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from occupancy.model import SpaceState

SpaceKey = tuple[str, str, str]  # tenant, site, space
SiteKey = tuple[str, str]  # tenant, site


@dataclass(frozen=True, slots=True)
class FaultEntry:
    """A fault as it happened: when, what, on what."""

    at: datetime
    until: datetime | None
    kind: str
    target: str
    detail: str = ""


@dataclass
class Truth:
    """True states (a step function per space), silences, excused windows, fault log."""

    stale_after: dict[SiteKey, timedelta] = field(default_factory=dict)
    changes: dict[SpaceKey, list[tuple[datetime, SpaceState]]] = field(
        default_factory=lambda: defaultdict(list))
    silent_from: dict[SpaceKey, datetime] = field(default_factory=dict)
    excused: dict[SpaceKey, list[tuple[datetime, datetime]]] = field(
        default_factory=lambda: defaultdict(list))
    camera_spaces: set[SpaceKey] = field(default_factory=set)
    space_stale_after: dict[SpaceKey, timedelta] = field(default_factory=dict)  # a device's own bound
    faults: list[FaultEntry] = field(default_factory=list)

    def record(self, key: SpaceKey, at: datetime, state: SpaceState) -> None:
        series = self.changes[key]
        if not series or series[-1][1] is not state:
            series.append((at, state))

    def state_at(self, key: SpaceKey, t: datetime) -> SpaceState:
        """The true state at ``t`` (``unknown`` before the first observation)."""
        series = self.changes.get(key, [])
        i = bisect.bisect_right([at for at, _ in series], t)
        return series[i - 1][1] if i else SpaceState.UNKNOWN

    def expected_at(self, key: SpaceKey, t: datetime) -> SpaceState:
        """What a correct pipeline reports at ``t``."""
        silent = self.silent_from.get(key)
        if silent is not None and t > silent + self.stale_bound(key):
            return SpaceState.UNKNOWN
        return self.state_at(key, t)

    def is_excused(self, key: SpaceKey, t: datetime) -> bool:
        silent = self.silent_from.get(key)
        if silent is not None and silent <= t <= silent + self.stale_bound(key):
            return True  # between the last word and the staleness bound, either is right
        return any(a <= t <= b for a, b in self.excused.get(key, []))

    def stale_bound(self, key: SpaceKey) -> timedelta:
        """How long the space's device may be silent before its space is ``unknown``."""
        return self.space_stale_after.get(key) or self.stale_after[(key[0], key[1])]

    def spaces_of(self, site: SiteKey) -> list[SpaceKey]:
        return sorted(k for k in self.changes if (k[0], k[1]) == site)

    def sites(self) -> list[SiteKey]:
        return sorted({(k[0], k[1]) for k in self.changes})

    def counts_at(self, site: SiteKey, t: datetime) -> dict[SpaceState, int]:
        """Expected free/occupied/unknown counts of a site at ``t``."""
        counts = dict.fromkeys(SpaceState, 0)
        for key in self.spaces_of(site):
            counts[self.expected_at(key, t)] += 1
        return counts
