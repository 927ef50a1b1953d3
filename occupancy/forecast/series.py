"""One site's observations as arrays, and the two rules every forecast shares:
what was *observed* at an instant between rows, and the causal features of an
origin.

``Series`` holds strictly increasing UTC instants (seconds), the share of
capacity free (``free / capacity``, 0..1) and the capacity of each row. The
value at an instant that is not a row is the straight line between the rows
on either side, provided they are at most ``max_gap_s`` apart (a missing row
or two is bridged, a night without data is not); at a row it is the row.
``observed_at`` applies that rule to targets (the "actual" of a forecast);
``lookback_at`` applies it to the past of an origin for the trend feature.

Features of an origin ``i`` read only rows ``0..i``: the current deviation
``r[i]``, its change over ``lag_s`` and the mean deviation over the trailing
windows (``WINDOWS_S``). Rolling means use a cumulative sum cut at ``i``, so a
row after the origin cannot reach them (tests poison the future to check).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occupancy.forecast.errors import ForecastError

WINDOWS_S = (3 * 3600.0, 24 * 3600.0, 7 * 86400.0)
FEATURES = ("bias", "now", "change", "mean_3h", "mean_24h", "mean_7d", "now_scaled")
_EPS = 0.05
_SNAP_MIN = (1, 2, 5, 10, 15, 20, 30, 60)


@dataclass(frozen=True, slots=True)
class Series:
    """Rows of one site, sorted by time, one row an instant (the last of duplicates kept)."""

    t: np.ndarray  # UTC seconds, strictly increasing
    share: np.ndarray  # free / capacity, clipped to 0..1
    capacity: np.ndarray

    @staticmethod
    def of(t: np.ndarray, free: np.ndarray, capacity: np.ndarray) -> Series:
        """Sort, keep the last row of each instant, and turn free spaces into shares of capacity."""
        t, free, capacity = (np.asarray(a, dtype=float) for a in (t, free, capacity))
        if not (t.shape == free.shape == capacity.shape):
            raise ForecastError("times, free and capacity differ in length")
        if np.any(capacity <= 0) or not np.all(np.isfinite(capacity)):
            raise ForecastError("capacity must be a positive number")
        order = np.argsort(t, kind="stable")
        t, free, capacity = t[order], free[order], capacity[order]
        last = np.ones(t.size, dtype=bool)
        last[:-1] = t[1:] != t[:-1]
        share = np.clip(free[last] / capacity[last], 0.0, 1.0)
        return Series(t=t[last], share=share, capacity=capacity[last])

    def __len__(self) -> int:
        return int(self.t.size)

    def before(self, cutoff: float) -> Series:
        """The rows strictly before ``cutoff``."""
        n = int(np.searchsorted(self.t, cutoff, side="left"))
        return Series(self.t[:n], self.share[:n], self.capacity[:n])

    def days(self, offset_s: float = 0.0) -> int:
        """How many distinct UTC-ish days (shifted by ``offset_s``) have a row."""
        return int(np.unique(np.floor((self.t + offset_s) / 86400.0)).size)


def cadence_s(t: np.ndarray) -> float:
    """The typical spacing of rows (median gap under 6 h), snapped to 1..60 minutes."""
    gaps = np.diff(np.asarray(t, dtype=float))
    gaps = gaps[(gaps > 0) & (gaps < 6 * 3600)]
    if gaps.size == 0:
        return 900.0
    minutes = float(np.median(gaps)) / 60.0
    best = min(_SNAP_MIN, key=lambda m: abs(np.log(m / max(minutes, 0.5))))
    return 60.0 * best


def max_gap_s(cadence: float) -> float:
    """The widest gap between two rows that the straight-line rule bridges."""
    return 2.5 * cadence


def observed_at(t: np.ndarray, v: np.ndarray, at: np.ndarray, gap_s: float) -> np.ndarray:
    """``v`` at the instants ``at`` by the straight-line rule; NaN where no rows bracket within ``gap_s``."""
    at = np.asarray(at, dtype=float)
    out = np.full(at.shape, np.nan)
    if t.size == 0:
        return out
    j = np.searchsorted(t, at, side="right")  # t[j-1] <= at < t[j]
    left = np.clip(j - 1, 0, t.size - 1)
    exact = (j >= 1) & (t[left] == at)
    out[exact] = v[left[exact]]
    right = np.clip(j, 0, t.size - 1)
    inside = (j >= 1) & (j < t.size) & ~exact
    span = t[right] - t[left]
    ok = inside & (span <= gap_s) & (span > 0)
    frac = np.where(ok, (at - t[left]) / np.where(span > 0, span, 1.0), 0.0)
    out[ok] = (v[left] + frac * (v[right] - v[left]))[ok]
    return out


def features(t: np.ndarray, r: np.ndarray, idx: np.ndarray, lag_s: float, gap_s: float) -> np.ndarray:
    """The causal features (rows: origins ``idx``; columns: ``FEATURES`` but the last) of deviations ``r``."""
    idx = np.asarray(idx, dtype=np.int64)
    now = r[idx]
    back = observed_at(t, r, t[idx] - lag_s, gap_s)
    change = np.where(np.isnan(back), 0.0, now - back)
    csum = np.concatenate(([0.0], np.cumsum(r)))
    cols = [np.ones(idx.size), now, change]
    for w in WINDOWS_S:
        start = np.searchsorted(t, t[idx] - w, side="right")
        count = idx + 1 - start
        cols.append((csum[idx + 1] - csum[start]) / np.maximum(count, 1))
    return np.column_stack(cols)


def occupancy_ratio(profile_now: np.ndarray, profile_then: np.ndarray) -> np.ndarray:
    """How much busier the profile is at the target than at the origin (occupied shares, capped)."""
    out: np.ndarray = np.clip((1.0 - profile_then + _EPS) / (1.0 - profile_now + _EPS), 0.0, 4.0)
    return out


def with_ratio(x: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """The base features plus ``now_scaled``: the deviation now grown with the occupancy ahead
    (a day busier by a factor stays busier by that factor as the lot fills)."""
    return np.column_stack((x, x[:, 1] * ratio))
