"""A seeded model of a parking lot: arrivals by hour of day, dwell times, bay choice.

How this works: arrivals are a Poisson process whose rate follows the hour of
day (morning and evening peaks, quiet nights; none while the lot is closed),
drawn by thinning from the peak rate; the weekend (Friday in Iran, the
``weekend`` parameter) has its own, lower profile. A driver takes a free bay,
preferring bays near the start of a zone (weights fall with the bay's index in
its zone), and stays for a lognormal dwell; a driver who finds no bay they may
use is turned away. Bays marked ``disabled`` in the site file are used only by
drivers with a disabled permit (who take one when free, else a general bay);
``ev_charger`` bays only by electric cars, likewise. Departures wait in a heap. ``advance(now)`` replays every
arrival and departure up to ``now`` and returns the net change of each bay
since the previous call: a car that came and went between two calls is not
reported, so no two events of one bay carry the same time.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from occupancy.ids import SpaceId
from occupancy.model import SpaceState
from occupancy.sitefile import Site
from simulators import SimulationError

Change = tuple[SpaceId, SpaceState]

# Arrivals per hour of local time, as a share of the lot's capacity.
DAY_PROFILE = (
    0.02, 0.01, 0.01, 0.01, 0.01, 0.04, 0.15, 0.45, 0.65, 0.55, 0.40, 0.35,
    0.38, 0.35, 0.30, 0.32, 0.42, 0.55, 0.62, 0.50, 0.35, 0.20, 0.08, 0.04,
)
# The weekend: a late, flat day with an evening outing.
WEEKEND_PROFILE = (
    0.03, 0.02, 0.01, 0.01, 0.01, 0.01, 0.03, 0.06, 0.12, 0.20, 0.28, 0.30,
    0.28, 0.25, 0.25, 0.28, 0.35, 0.42, 0.45, 0.40, 0.30, 0.18, 0.08, 0.05,
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

DriverKind = str  # "general", "disabled" or "ev"


@dataclass(frozen=True, slots=True)
class ParkingParams:
    arrivals_per_hour: tuple[float, ...] = DAY_PROFILE
    dwell_median_s: float = 90 * 60
    dwell_sigma: float = 0.7
    dwell_min_s: float = 5 * 60
    dwell_max_s: float = 12 * 3600
    near_start_bias: float = 0.08  # weight of the bay at index i in its zone: exp(-bias·i)
    weekend_arrivals_per_hour: tuple[float, ...] = WEEKEND_PROFILE
    weekend: tuple[str, ...] = ("friday",)
    disabled_share: float = 0.04  # of arriving drivers, holding a disabled permit
    ev_share: float = 0.06  # of arriving drivers, in an electric car


def bay_kind(attributes: dict[str, object]) -> DriverKind:
    """Who may use a bay with these site-file attributes."""
    if attributes.get("disabled"):
        return "disabled"
    return "ev" if attributes.get("ev_charger") else "general"


def minutes(hhmm: str) -> int:
    """``"07:30"`` → 450; ``"24:00"`` → 1440."""
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


class ParkingLot:
    """The bays of one parking site; ``initial_states`` first, then ``advance``."""

    def __init__(self, site: Site, *, seed: int, tz: tzinfo = UTC,
                 params: ParkingParams | None = None) -> None:
        if site.kind != "parking":
            raise SimulationError(f"site {site.id} is a {site.kind}, not a parking lot")
        self.site = site
        self.params = params or ParkingParams()
        self.tz = tz
        self.turned_away = 0
        self.arrivals = 0
        self._rng = random.Random(seed)
        self._weights = {s: math.exp(-self.params.near_start_bias * i)
                         for z in site.zones for i, s in enumerate(z.space_ids())}
        self._reserved = {s: bay_kind(z.attributes.get(str(s), {}))
                          for z in site.zones for s in z.space_ids()}
        self._hours = site.opening_hours
        self._bays: list[SpaceId] = []
        self._occupied: set[SpaceId] = set()
        self._departures: list[tuple[datetime, int, SpaceId]] = []
        self._tiebreak = 0
        self._now: datetime | None = None
        self._next_arrival: datetime | None = None

    @property
    def capacity(self) -> int:
        return len(self._bays)

    def initial_states(self, spaces: Iterable[SpaceId], at: datetime) -> list[Change]:
        """Model ``spaces`` from ``at`` on, filled as is usual at that hour; all states."""
        self._bays = [s for s in spaces if s in self._weights]
        self._occupied.clear()
        self._departures.clear()
        self._now = at
        share = min(0.95, 2.0 * self._rate_share(at))
        for _ in range(round(share * self.capacity)):
            bay = self._choose_bay(self._driver())
            if bay is not None:
                self._park(bay, at, residual=True)
        self._next_arrival = self._candidate_after(at)
        return list(self.states().items())

    def advance(self, now: datetime) -> list[Change]:
        """Replay arrivals and departures up to ``now``; the bays that changed."""
        if self._now is None or self._next_arrival is None:
            raise SimulationError("call initial_states before advance")
        before = set(self._occupied)
        while True:
            leave = self._departures[0][0] if self._departures else None
            if leave is not None and leave <= now and leave <= self._next_arrival:
                self._occupied.discard(heapq.heappop(self._departures)[2])
            elif self._next_arrival <= now:
                self._arrive(self._next_arrival)
                self._next_arrival = self._candidate_after(self._next_arrival)
            else:
                break
        self._now = now
        return [(b, self._state(b)) for b in self._bays if (b in before) != (b in self._occupied)]

    def states(self) -> dict[SpaceId, SpaceState]:
        return {b: self._state(b) for b in self._bays}

    # ---- helpers -----------------------------------------------------------

    def _state(self, bay: SpaceId) -> SpaceState:
        return SpaceState.OCCUPIED if bay in self._occupied else SpaceState.FREE

    def _rate_share(self, at: datetime) -> float:
        """Arrivals per hour at ``at`` as a share of capacity (0 while closed)."""
        local = at.astimezone(self.tz)
        if self._hours is not None:
            minute = local.hour * 60 + local.minute
            if not minutes(self._hours.open) <= minute < minutes(self._hours.close):
                return 0.0
        weekend = WEEKDAYS[local.weekday()] in self.params.weekend
        profile = self.params.weekend_arrivals_per_hour if weekend else self.params.arrivals_per_hour
        return profile[local.hour]

    def _candidate_after(self, t: datetime) -> datetime:
        """The next arrival after ``t`` (Poisson, thinned from the peak rate)."""
        peak = max(*self.params.arrivals_per_hour, *self.params.weekend_arrivals_per_hour)
        if peak <= 0:
            return t + timedelta(days=3650)
        peak_per_s = peak * max(self.capacity, 1) / 3600
        while True:
            t += timedelta(seconds=self._rng.expovariate(peak_per_s))
            if self._rng.random() * peak < self._rate_share(t):
                return t

    def _arrive(self, at: datetime) -> None:
        self.arrivals += 1
        bay = self._choose_bay(self._driver())
        if bay is None:
            self.turned_away += 1
        else:
            self._park(bay, at, residual=False)

    def _driver(self) -> DriverKind:
        r = self._rng.random()
        if r < self.params.disabled_share:
            return "disabled"
        return "ev" if r < self.params.disabled_share + self.params.ev_share else "general"

    def _choose_bay(self, driver: DriverKind) -> SpaceId | None:
        """A free bay this driver may use: their reserved kind first, else a general one."""
        for kind in ((driver, "general") if driver != "general" else ("general",)):
            free = [b for b in self._bays if b not in self._occupied and self._reserved[b] == kind]
            if free:
                return self._rng.choices(free, weights=[self._weights[b] for b in free])[0]
        return None

    def _park(self, bay: SpaceId, at: datetime, residual: bool) -> None:
        p = self.params
        dwell = self._rng.lognormvariate(math.log(p.dwell_median_s), p.dwell_sigma)
        dwell = min(max(dwell, p.dwell_min_s), p.dwell_max_s)
        if residual:  # a car already parked at the start has served part of its stay
            dwell *= self._rng.random()
        self._occupied.add(bay)
        self._tiebreak += 1
        heapq.heappush(self._departures, (at + timedelta(seconds=dwell), self._tiebreak, bay))
