"""Recognising, during the day, that today is not the day the calendar says.

An unlisted holiday, a strike or a festival looks like a rest day on a
working weekday. At each forecast origin the rows of the local day so far
are compared with every day type's profile; when another type explains them
clearly better (its squared error under ``SWITCH_RATIO`` of the calendar
type's, over at least ``MIN_ROWS`` rows where the two profiles differ by
``MIN_GAP`` of capacity, and by at least ``MIN_MSE`` per row), the rest of
that day is forecast with that type's profile. Only rows up to the origin
are read.
"""

from __future__ import annotations

import numpy as np

from occupancy.forecast.profile import N_TYPES, Profile

SWITCH_RATIO = 0.3
MIN_ROWS = 4
MIN_GAP = 0.05
MIN_MSE = 0.1**2


def todays_type(profile: Profile, day: np.ndarray, second: np.ndarray, calendar: np.ndarray,
                share: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The day type to forecast the rest of each origin's day with (usually the calendar's)."""
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo = int(np.searchsorted(day, day[idx].min(), side="left"))  # only the origins' days are read
    hi = int(idx.max()) + 1
    day, second, share, idx = day[lo:hi], second[lo:hi], share[lo:hi], idx - lo
    calendar = calendar[lo:hi]
    n = share.size
    candidates = np.array([profile.at(np.full(n, k), second) for k in range(N_TYPES)])  # (types, rows)
    own = profile.at(calendar, second)
    sq = np.vstack(((candidates - share) ** 2, (own - share)[None, :] ** 2))
    differs = np.abs(candidates - own) > MIN_GAP
    csq = np.concatenate((np.zeros((sq.shape[0], 1)), np.cumsum(sq, axis=1)), axis=1)
    cdiff = np.concatenate((np.zeros((N_TYPES, 1)), np.cumsum(differs, axis=1)), axis=1)
    start = np.searchsorted(day, day[idx], side="left")  # rows are in time order
    end = idx + 1
    today = csq[:, end] - csq[:, start]  # (types + 1, origins)
    rows = end - start
    alt, own_sq = today[:N_TYPES], today[N_TYPES]
    informative = (cdiff[:, end] - cdiff[:, start]) >= MIN_ROWS
    better = informative & (alt < SWITCH_RATIO * own_sq) & ((own_sq - alt) / rows >= MIN_MSE)
    score = np.where(better, alt, np.inf)
    best = np.argmin(score, axis=0)
    switched = np.isfinite(score[best, np.arange(idx.size)])
    out: np.ndarray = np.where(switched, best, calendar[idx])
    return out
