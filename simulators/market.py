"""A seeded model of a produce market: vendors come before opening and leave around closing.

How this works: each local day has a schedule drawn from its own random
stream (seed, site, date), so any moment can be computed directly and the
same seed always gives the same day. On a closed day (``closed_days`` of the
site's opening hours) every stall stays free. On an open day a share of the
vendors is absent; the others arrive around half an hour before opening
(some late) and leave around closing. The state of a stall at ``t`` is
occupied exactly while ``arrive <= t < leave``; ``advance(now)`` returns the
stalls whose state differs from the previous call.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from occupancy.ids import SpaceId
from occupancy.model import SpaceState
from occupancy.sitefile import Hours, Site
from simulators import SimulationError
from simulators.parking import Change, minutes

DEFAULT_HOURS = Hours(open="07:00", close="21:00")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

Stay = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class MarketParams:
    absent_share: float = 0.12
    arrive_mean_s: float = -30 * 60  # relative to opening
    arrive_sd_s: float = 20 * 60
    leave_mean_s: float = -15 * 60  # relative to closing
    leave_sd_s: float = 25 * 60
    min_stay_s: float = 2 * 3600


class Market:
    """The stalls of one market site; ``initial_states`` first, then ``advance``."""

    def __init__(self, site: Site, *, seed: int, tz: tzinfo = UTC,
                 params: MarketParams | None = None) -> None:
        if site.kind != "market":
            raise SimulationError(f"site {site.id} is a {site.kind}, not a market")
        self.site = site
        self.seed = seed
        self.tz = tz
        self.params = params or MarketParams()
        self.hours = site.opening_hours or DEFAULT_HOURS
        self._closed = {d.lower()[:3] for d in self.hours.closed_days}
        self._stalls: list[SpaceId] = []
        self._days: dict[date, dict[SpaceId, Stay | None]] = {}
        self._last: dict[SpaceId, SpaceState] | None = None

    def initial_states(self, spaces: Iterable[SpaceId], at: datetime) -> list[Change]:
        """Model ``spaces`` from ``at`` on; the state of each at ``at``."""
        known = {s for _, s in self.site.spaces()}
        self._stalls = [s for s in spaces if s in known]
        self._last = self.states_at(at)
        return list(self._last.items())

    def advance(self, now: datetime) -> list[Change]:
        """The stalls whose state changed since the previous call."""
        if self._last is None:
            raise SimulationError("call initial_states before advance")
        current = self.states_at(now)
        changes = [(s, st) for s, st in current.items() if self._last[s] is not st]
        self._last = current
        return changes

    def states(self) -> dict[SpaceId, SpaceState]:
        if self._last is None:
            raise SimulationError("call initial_states first")
        return dict(self._last)

    def states_at(self, t: datetime) -> dict[SpaceId, SpaceState]:
        """Every stall's state at ``t`` (pure in ``t`` and the seed)."""
        day = t.astimezone(self.tz).date()
        stays = [self._day(day - timedelta(days=1)), self._day(day)]
        return {s: SpaceState.OCCUPIED if any(_within(d[s], t) for d in stays)
                else SpaceState.FREE for s in self._stalls}

    def is_open_day(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()][:3] not in self._closed

    # ---- helpers -----------------------------------------------------------

    def _day(self, day: date) -> dict[SpaceId, Stay | None]:
        if day not in self._days:
            if len(self._days) > 8:
                self._days.pop(min(self._days))
            self._days[day] = self._draw_day(day)
        return self._days[day]

    def _draw_day(self, day: date) -> dict[SpaceId, Stay | None]:
        if not self.is_open_day(day):
            return dict.fromkeys(self._all_stalls())
        rng = random.Random(f"{self.seed}/{self.site.id}/{day.isoformat()}")
        opening = self._at(day, self.hours.open)
        closing = self._at(day, self.hours.close)
        return {s: self._draw_stay(rng, opening, closing) for s in self._all_stalls()}

    def _draw_stay(self, rng: random.Random, opening: datetime, closing: datetime) -> Stay | None:
        p = self.params
        if rng.random() < p.absent_share:
            return None
        arrive = opening + timedelta(seconds=rng.gauss(p.arrive_mean_s, p.arrive_sd_s))
        leave = closing + timedelta(seconds=rng.gauss(p.leave_mean_s, p.leave_sd_s))
        return arrive, max(leave, arrive + timedelta(seconds=p.min_stay_s))

    def _all_stalls(self) -> list[SpaceId]:
        # every stall of the site draws, modelled or not, so a subset sees the same day
        return [s for _, s in self.site.spaces()]

    def _at(self, day: date, hhmm: str) -> datetime:
        local = datetime.combine(day, time(0), tzinfo=self.tz)
        return local + timedelta(minutes=minutes(hhmm))


def _within(stay: Stay | None, t: datetime) -> bool:
    return stay is not None and stay[0] <= t < stay[1]
