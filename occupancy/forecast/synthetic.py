"""Synthetic car-park cities for tests and the benchmark (seeded, pure).

Each site's occupied share is a workday or rest-day curve (rising in the
morning, falling in the evening, a site-specific amplitude and opening hours;
rest days quieter and later), times a day-to-day factor that wanders (AR(1)
over days), times a linear trend over the whole period, plus intraday noise
that persists for about three quarters of an hour (an AR(1) at the row
cadence). Rest days are the city's weekend weekdays and its holidays. Rows
come every ``cadence_min`` minutes with jitter; a few are dropped, a few
multi-hour gaps and one whole day are missing, as in real feeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from occupancy.forecast.evaluate import SiteRows
from occupancy.forecast.localtime import DAY_S, local_parts, zone


@dataclass(frozen=True, slots=True)
class City:
    """What kind of city to make."""

    tz: str
    weekend: tuple[int, ...]  # weekdays (Monday 0) that are rest days
    holidays: tuple[date, ...]
    start: date
    days: int
    sites: int
    cadence_min: float
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Row:
    site: str
    capacity: int
    t: float
    free: int

    @property
    def at(self) -> str:
        return datetime.fromtimestamp(round(self.t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _curve(hour: np.ndarray, open_h: float, close_h: float, amp: float, night: float) -> np.ndarray:
    rise = 1 / (1 + np.exp(-(hour - open_h) / 0.7))
    fall = 1 / (1 + np.exp(-(close_h - hour) / 1.0))
    return night + amp * rise * fall


def _site_rows(city: City, k: int, rng: np.random.Generator) -> list[Row]:
    step = city.cadence_min * 60.0
    t0 = datetime(city.start.year, city.start.month, city.start.day, tzinfo=UTC).timestamp()
    t = t0 + np.arange(0, city.days * DAY_S, step)
    t = t + rng.uniform(-0.2, 0.2, t.size) * step
    lp = local_parts(t, zone(city.tz))
    hol = {(d - date(1970, 1, 1)).days for d in city.holidays}
    rest = np.isin(lp.weekday, city.weekend) | np.isin(lp.day, list(hol))
    hour = lp.second / 3600.0
    open_h, close_h = rng.uniform(7, 9.5), rng.uniform(16.5, 21)
    amp, night = rng.uniform(0.45, 0.9), rng.uniform(0.02, 0.15)
    work = _curve(hour, open_h, close_h, amp, night)
    off = _curve(hour, open_h + 2, close_h + rng.uniform(-2, 1.5), amp * rng.uniform(0.3, 0.8), night)
    days = lp.day - lp.day.min()
    day_factor = np.zeros(days.max() + 1)
    for d in range(1, day_factor.size):
        day_factor[d] = 0.6 * day_factor[d - 1] + rng.normal(0, 0.06)
    trend = 1 + rng.uniform(-0.15, 0.25) * days / max(days.max(), 1)
    occ = np.where(rest, off, work) * (1 + day_factor[days]) * trend
    phi = np.exp(-step / 2700.0)
    noise = np.zeros(t.size)
    eps = rng.normal(0, 0.035 * np.sqrt(1 - phi**2), t.size)
    for i in range(1, t.size):
        noise[i] = phi * noise[i - 1] + eps[i]
    occ = np.clip(occ + noise * (0.3 + occ), 0, 1)
    cap = int(rng.integers(40, 900))
    free = np.clip(np.rint(cap * (1 - occ) + rng.normal(0, 1.0, t.size)), 0, cap).astype(int)
    keep = rng.random(t.size) > 0.03
    for _ in range(3):
        g0 = rng.uniform(t[0], t[-1])
        keep &= ~((t > g0) & (t < g0 + rng.uniform(2, 8) * 3600))
    keep &= days != rng.integers(3, days.max())
    name = f"site-{k:03d}"
    return [Row(name, cap, float(ti), int(fi)) for ti, fi in zip(t[keep], free[keep], strict=True)]


def make_city(city: City) -> list[Row]:
    """The rows of every site of ``city``, site by site in time order."""
    rng = np.random.default_rng(city.seed)
    rows: list[Row] = []
    for k in range(city.sites):
        rows.extend(_site_rows(city, k, rng))
    return rows


def sites_of(rows: list[Row]) -> dict[str, SiteRows]:
    """The rows grouped per site, as ``evaluate.read_csv`` gives them from a CSV."""
    out: dict[str, SiteRows] = {}
    for r in rows:
        s = out.setdefault(r.site, SiteRows())
        s.t.append(r.t)
        s.capacity.append(r.capacity)
        s.free.append(r.free)
        s.at_text.append(r.at)
    return out


def to_csv(rows: list[Row]) -> str:
    """The rows as ``site,capacity,at,free`` CSV text."""
    lines = ["site,capacity,at,free"]
    lines.extend(f"{r.site},{r.capacity},{r.at},{r.free}" for r in rows)
    return "\n".join(lines) + "\n"


TEHRAN = City(tz="Asia/Tehran", weekend=(4,), holidays=(date(2024, 5, 15), date(2024, 6, 5)),
              start=date(2024, 4, 10), days=70, sites=12, cadence_min=5, seed=1)
LONDON = City(tz="Europe/London", weekend=(5, 6), holidays=(date(2024, 8, 26),),
              start=date(2024, 7, 1), days=63, sites=12, cadence_min=15, seed=2)
