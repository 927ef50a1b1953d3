"""Local calendar parts of UTC instants, vectorised.

A zone's offset from UTC changes only at instants that are multiples of 15
minutes (every zone in the tz database, including Asia/Tehran's +03:30) and
at most a few times a year. So the instants are grouped by 15-minute slot,
and the offsets of the distinct slots are found by bisection: where the
offsets at both ends of a run of slots agree and the run is shorter than
``_SAME_OFFSET_S`` (no zone changes twice within it), the whole run shares
that offset. A million timestamps cost a few dozen ``zoneinfo`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from occupancy.forecast.errors import ForecastError

DAY_S = 86400
_SLOT_S = 900
# 1970-01-01 (day 0) was a Thursday; Monday is 0 as in ``date.weekday()``.
_EPOCH_WEEKDAY = 3


@dataclass(frozen=True, slots=True)
class LocalParts:
    """For each instant: its local date (days since 1970-01-01), weekday (Monday 0) and second of day."""

    day: np.ndarray
    weekday: np.ndarray
    second: np.ndarray


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``; ``ForecastError`` naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ForecastError(f"unknown time zone {name!r}") from exc


def local_parts(epoch_s: np.ndarray, tz: ZoneInfo) -> LocalParts:
    """The local calendar parts of the UTC instants ``epoch_s`` (seconds) in ``tz``."""
    t = np.asarray(epoch_s, dtype=float)
    slots = np.floor(t / _SLOT_S).astype(np.int64)
    unique, inverse = np.unique(slots, return_inverse=True)
    offsets = np.empty(unique.size)
    _fill_offsets(unique, offsets, 0, unique.size - 1, tz)
    local = t + offsets[inverse.reshape(-1)] if unique.size else t
    day = np.floor(local / DAY_S).astype(np.int64)
    return LocalParts(day=day, weekday=(day + _EPOCH_WEEKDAY) % 7, second=local - day * DAY_S)


_SAME_OFFSET_S = 60 * DAY_S


def _fill_offsets(slots: np.ndarray, out: np.ndarray, lo: int, hi: int, tz: ZoneInfo) -> None:
    """``out[lo..hi]`` = the offsets of ``slots[lo..hi]``, bisecting only where they change."""
    stack = [(lo, hi, _offset_s(int(slots[lo]) * _SLOT_S, tz) if hi >= lo else 0.0)]
    while stack:
        lo, hi, first = stack.pop()
        if hi < lo:
            continue
        last = _offset_s(int(slots[hi]) * _SLOT_S, tz)
        if (first == last and (slots[hi] - slots[lo]) * _SLOT_S < _SAME_OFFSET_S) or hi - lo <= 1:
            out[lo:hi + 1] = first
            out[hi] = last
            continue
        mid = (lo + hi) // 2
        stack.append((lo, mid, first))
        stack.append((mid + 1, hi, _offset_s(int(slots[mid + 1]) * _SLOT_S, tz)))


def _offset_s(epoch_s: int, tz: ZoneInfo) -> float:
    offset = datetime.fromtimestamp(epoch_s, UTC).astimezone(tz).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def day_number(iso_date: str) -> int:
    """Days since 1970-01-01 of a ``YYYY-MM-DD`` date; ``ForecastError`` when malformed."""
    try:
        d = datetime.strptime(iso_date.strip(), "%Y-%m-%d").date()
    except ValueError as exc:
        raise ForecastError(f"{iso_date!r} is not a date (YYYY-MM-DD)") from exc
    return d.toordinal() - datetime(1970, 1, 1).date().toordinal()
