"""The weekly profile: the usual share free per day type and time of day.

How this works. Day types are the seven weekdays plus ``HOLIDAY`` (dates on
the holiday list). A profile value is a recency-weighted mean of the days of
its type in a time-of-day bin, each *day* weighing one (times its recency),
shrunk towards a coarser level in proportion to how few days it has::

    weekday w   ← shrunk to its cluster c(w) (weekdays that look alike)
    cluster c   ← shrunk to all ordinary days
    holiday     ← shrunk to the "rest day" (the weekday least like the others)

so a site with three weeks of data leans on its clusters, one with a year
stands on its weekdays. Clusters are learned from the data (weekdays whose
means differ by less than their noise, or by under ``MERGE_FLOOR`` of
capacity, merge): no assumption about which days are the weekend, so Iran's
Friday and Britain's Saturday/Sunday come out of the same code.

All levels are sums of per-day contributions, so the *leave-one-day-out*
profile of a training row (its own day removed at every level) costs the
same as the profile; the regressions and the intervals are fitted on those
honest residuals, not on residuals the profile has already seen.
Bins are the data's cadence; for bins under 15 minutes the sums are smoothed
with a small triangular kernel over neighbouring bins.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from occupancy.forecast.localtime import DAY_S

HOLIDAY = 7
N_TYPES = 8
PRIOR_DAYS = 2.0  # a level weighs like this many days of the level below
MERGE_FLOOR = 0.04  # weekdays closer than this (RMS share of capacity) share a cluster
DAY_NOISE = 0.1  # typical day-to-day spread of a bin (share of capacity), for the merge test
HALF_LIFE_DAYS = 42.0


@dataclass(frozen=True, slots=True)
class Profile:
    """Share free per day type (rows: Monday..Sunday, holiday) and bin (``bin_s`` wide, starting 00:00)."""

    bin_s: float
    values: np.ndarray  # (N_TYPES, n_bins)
    clusters: tuple[int, ...]  # cluster number of each weekday
    rest_day: int

    def at(self, types: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The profile at day types ``types`` and local seconds of day ``second`` (linear between bins)."""
        nb = self.values.shape[1]
        x = np.asarray(second, dtype=float) / self.bin_s
        b0 = np.floor(x).astype(np.int64)
        f = x - b0
        v = self.values
        out: np.ndarray = (1 - f) * v[types, b0 % nb] + f * v[types, (b0 + 1) % nb]
        return out


@dataclass(frozen=True, slots=True)
class _Sums:
    s: np.ndarray  # (groups, nb) weighted sums of shares
    n: np.ndarray  # (groups, nb) weighted day counts


def day_types(day: np.ndarray, weekday: np.ndarray, holidays: frozenset[int]) -> np.ndarray:
    """The day type of each local date: its weekday, or ``HOLIDAY``."""
    types = np.asarray(weekday, dtype=np.int64).copy()
    if holidays:
        types[np.isin(day, np.fromiter(holidays, dtype=np.int64))] = HOLIDAY
    return types


def fit_profile(day: np.ndarray, second: np.ndarray, types: np.ndarray, share: np.ndarray,
                bin_s: float, weekly: bool) -> tuple[Profile, np.ndarray]:
    """The profile of the rows, and each row's leave-its-day-out profile value."""
    nb = max(1, round(DAY_S / bin_s))
    b = np.rint(second / bin_s).astype(np.int64) % nb
    age = (day.max() - day) if day.size else day
    key = day * nb + b
    ukey, inv, per_cell = np.unique(key, return_inverse=True, return_counts=True)
    w_row = 0.5 ** (age / HALF_LIFE_DAYS) / per_cell[inv]
    t_eff = types if weekly else np.where(types == HOLIDAY, HOLIDAY, 0)
    own_day_s = np.bincount(inv, weights=w_row * share, minlength=ukey.size)
    own_day_n = np.bincount(inv, weights=w_row, minlength=ukey.size)
    by_type = _sums(t_eff, b, w_row, share, N_TYPES, nb, bin_s)
    clusters = _clusters(by_type) if weekly else (0,) * 7
    rest = _rest_day(by_type) if weekly else 0
    values = _levels(by_type, clusters, rest)
    profile = Profile(bin_s=bin_s, values=values, clusters=clusters, rest_day=rest)
    ds, dn = _own_day(ukey, own_day_s, own_day_n, key, nb, bin_s)
    loo = _leave_day_out(by_type, clusters, rest, t_eff, b, ds, dn, values)
    return profile, loo


def _kernel(bin_s: float) -> np.ndarray:
    half = round(600.0 / bin_s) if bin_s < 900 else 0
    k: np.ndarray = np.concatenate((np.arange(1, half + 2), np.arange(half, 0, -1))).astype(float)
    return k / float(k.max())


def _smooth(a: np.ndarray, bin_s: float) -> np.ndarray:
    k = _kernel(bin_s)
    if k.size == 1:
        return a
    half = k.size // 2
    out = np.zeros_like(a)
    for j, kj in enumerate(k):
        out += kj * np.roll(a, j - half, axis=-1)
    return out


def _sums(types: np.ndarray, b: np.ndarray, w: np.ndarray, share: np.ndarray, groups: int, nb: int,
          bin_s: float) -> _Sums:
    cell = types * nb + b
    s = np.bincount(cell, weights=w * share, minlength=groups * nb).reshape(groups, nb)
    n = np.bincount(cell, weights=w, minlength=groups * nb).reshape(groups, nb)
    return _Sums(_smooth(s, bin_s), _smooth(n, bin_s))


def _fill(values: np.ndarray) -> np.ndarray:
    """Bins without data take the nearest bin with data (circularly); all empty → 0.5."""
    ok = np.isfinite(values)
    if not ok.any():
        return np.full_like(values, 0.5)
    nb = values.size
    pos = np.flatnonzero(ok)
    idx = np.arange(nb)
    dist = np.abs(idx[:, None] - pos[None, :])
    dist = np.minimum(dist, nb - dist)
    out: np.ndarray = values[pos[np.argmin(dist, axis=1)]]
    return out


def _shrunk(s: np.ndarray, n: np.ndarray, prior: np.ndarray) -> np.ndarray:
    out: np.ndarray = (s + PRIOR_DAYS * prior) / (n + PRIOR_DAYS)
    return out


def _levels(by: _Sums, clusters: tuple[int, ...], rest: int, minus_s: np.ndarray | None = None,
            minus_n: np.ndarray | None = None) -> np.ndarray:
    """The profile table from per-type sums (optionally minus one day's sums per type)."""
    s, n = by.s.copy(), by.n.copy()
    if minus_s is not None and minus_n is not None:
        s, n = s - minus_s, np.maximum(n - minus_n, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = _fill(s[:7].sum(0) / n[:7].sum(0))
    values = np.empty_like(s)
    for c in set(clusters):
        members = [w for w in range(7) if clusters[w] == c]
        cs = _shrunk(s[members].sum(0), n[members].sum(0), base)
        for w in members:
            values[w] = _shrunk(s[w], n[w], cs)
    values[HOLIDAY] = _shrunk(s[HOLIDAY], n[HOLIDAY], values[rest])
    return values


def _own_day(ukey: np.ndarray, day_s: np.ndarray, day_n: np.ndarray, key: np.ndarray, nb: int,
             bin_s: float) -> tuple[np.ndarray, np.ndarray]:
    """What each row's own day adds to the smoothed sums at the row's bin (both sums)."""
    k = _kernel(bin_s)
    half = k.size // 2
    day, b = key // nb, key % nb
    s, n = np.zeros(key.size), np.zeros(key.size)
    for j, kj in enumerate(k):
        other = day * nb + (b - (j - half)) % nb
        pos = np.clip(np.searchsorted(ukey, other), 0, ukey.size - 1)
        hit = ukey[pos] == other
        s += np.where(hit, kj * day_s[pos], 0.0)
        n += np.where(hit, kj * day_n[pos], 0.0)
    return s, n


def _leave_day_out(by: _Sums, clusters: tuple[int, ...], rest: int, types: np.ndarray, b: np.ndarray,
                   ds: np.ndarray, dn: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Each row's profile value with its own day's contribution removed at every level."""
    s, n = by.s, by.n
    all_s, all_n = s[:7].sum(0), n[:7].sum(0)
    members = [[v for v in range(7) if clusters[v] == clusters[w]] for w in range(7)]
    cl_s = np.array([s[m].sum(0) for m in members])
    cl_n = np.array([n[m].sum(0) for m in members])
    ordinary = types < HOLIDAY
    w = np.where(ordinary, types, 0)
    own_s, own_n = np.where(ordinary, ds, 0.0), np.where(ordinary, dn, 0.0)
    left_n = all_n[b] - own_n
    with np.errstate(invalid="ignore", divide="ignore"):
        base = np.where(left_n > 1e-9, (all_s[b] - own_s) / left_n, np.nan)
    fallback = _fill(np.where(all_n > 0, all_s / np.where(all_n > 0, all_n, 1), np.nan))
    base = np.where(np.isfinite(base), base, fallback[b])
    cl = _shrunk(cl_s[w, b] - own_s, np.maximum(cl_n[w, b] - own_n, 0), base)
    week = _shrunk(s[w, b] - own_s, np.maximum(n[w, b] - own_n, 0), cl)
    hol = _shrunk(s[HOLIDAY, b] - ds, np.maximum(n[HOLIDAY, b] - dn, 0), full[rest, b])
    return np.where(ordinary, week, hol)


def _clusters(by: _Sums) -> tuple[int, ...]:
    """Group the weekdays whose mean profiles differ less than their noise (average linkage)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = by.s[:7] / by.n[:7]
    days = by.n[:7].max(axis=1)
    groups: list[list[int]] = [[w] for w in range(7)]
    while len(groups) > 1:
        best, pair = np.inf, (0, 0)
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                d = _distance(mean, groups[i], groups[j])
                limit = max(MERGE_FLOOR, 3.0 * DAY_NOISE * np.sqrt(1 / max(days[groups[i]].sum(), 1)
                                                              + 1 / max(days[groups[j]].sum(), 1)))
                if d - limit < best:
                    best, pair = d - limit, (i, j)
        if best >= 0:
            break
        i, j = pair
        groups[i] += groups.pop(j)
    label = [0] * 7
    for c, g in enumerate(groups):
        for w in g:
            label[w] = c
    return tuple(label)


def _distance(mean: np.ndarray, a: list[int], b: list[int]) -> float:
    diffs = [mean[i] - mean[j] for i in a for j in b]
    d = np.array(diffs)
    ok = np.isfinite(d)
    if not ok.any():
        return 0.0
    return float(np.sqrt(np.mean(d[ok] ** 2)))


def _rest_day(by: _Sums) -> int:
    """The weekday whose profile is furthest from the median weekday: what a holiday looks like."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = by.s[:7] / by.n[:7]
    seen = np.isfinite(mean).any(axis=0)
    if not seen.any():
        return 6
    mean = mean[:, seen]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a weekday without data in some bin
        med = np.nanmedian(mean, axis=0)
    dist = [np.nanmean((mean[w] - med) ** 2) if np.isfinite(mean[w]).any() else -1.0 for w in range(7)]
    return int(np.argmax(dist))
