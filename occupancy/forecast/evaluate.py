"""Backtesting: read a ``site,capacity,at,free`` CSV, fit on the rows before a cut,
forecast from every row after it, and score against the two baselines.

How this works. ``read_csv`` checks every row (a bad one is a ``ForecastError``
naming the file, line and column). ``backtest`` fits ``fit_many`` on the rows
strictly before ``test_from``; every row at or after it is a forecast
*origin*, predicted from the site's rows up to that origin only. A site with
no rows before the cut gets the persistence model: a new site.

Scoring rule (the same for the forecaster and both baselines): the *actual*
at ``origin + h`` is the row at that instant, or the straight line between
the rows on either side when they are at most 2.5 cadences apart
(``series.observed_at``); otherwise the point is not scored.

Baselines, on the same points: *persistence* ``free(t)``; *profile delta*
``free(t) + P(t+h) − P(t)`` clipped to ``[0, capacity]``, where ``P`` is the
median free spaces of the site's training rows per local weekday and time bin
(the bin is the data's cadence; a row goes to the nearest bin), and
persistence where either bin has no training row.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from occupancy.forecast.errors import ForecastError
from occupancy.forecast.fit import Prior, fit_many
from occupancy.forecast.localtime import DAY_S, day_number, local_parts, zone
from occupancy.forecast.model import SiteModel, predict_many
from occupancy.forecast.series import Series, cadence_s, max_gap_s, observed_at

COLUMNS = ("site", "capacity", "at", "free")


@dataclass(slots=True)
class SiteRows:
    """One site's rows in file order, with the ``at`` text as written."""

    t: list[float] = field(default_factory=list)
    capacity: list[float] = field(default_factory=list)
    free: list[float] = field(default_factory=list)
    at_text: list[str] = field(default_factory=list)

    def series(self) -> Series:
        return Series.of(np.array(self.t), np.array(self.free), np.array(self.capacity))


@dataclass(frozen=True, slots=True)
class Predictions:
    """Forecasts of every origin of one site (arrays ``(origins, horizons)``)."""

    site: str
    at_text: list[str]
    origin_t: np.ndarray
    free: np.ndarray
    lo80: np.ndarray
    hi80: np.ndarray
    method: str


def parse_time(text: str) -> float:
    """UTC seconds of an ISO 8601 instant (``Z``/offset, or none meaning UTC); ValueError."""
    d = datetime.fromisoformat(text.strip())
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def parse_holidays(text: str) -> tuple[int, ...]:
    """Dates from a comma list or a file (commas, blanks or lines; ``#`` comments)."""
    if not text.strip():
        return ()
    path = Path(text)
    if path.is_file():
        text = "\n".join(line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(day_number(d) for d in re.split(r"[\s,]+", text) if d)


def _number(text: str, line: int, column: str, path: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ForecastError(f"{path}:{line}: column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise ForecastError(f"{path}:{line}: column {column!r}: {text!r} is not a finite number")
    return v


def read_csv(path: str | Path) -> tuple[dict[str, SiteRows], int]:
    """The rows of each site, and how many rows had ``free`` outside ``[0, capacity]`` (clipped)."""
    name = str(path)
    sites: dict[str, SiteRows] = {}
    clipped = 0
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ForecastError(f"{name}:1: missing column(s) {', '.join(missing)} "
                                    f"(need {','.join(COLUMNS)})")
            col = {c: header.index(c) for c in COLUMNS}
            for line, row in enumerate(reader, start=2):
                if not row or all(not cell.strip() for cell in row):
                    continue
                clipped += _add_row(sites, row, col, line, name)
    except OSError as exc:
        raise ForecastError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ForecastError(f"{name}: not UTF-8 text") from exc
    if not sites:
        raise ForecastError(f"{name}: no data rows")
    return sites, clipped


def _add_row(sites: dict[str, SiteRows], row: list[str], col: dict[str, int], line: int, path: str) -> int:
    if len(row) < len(col) or len(row) <= max(col.values()):
        raise ForecastError(f"{path}:{line}: {len(row)} fields, expected {max(col.values()) + 1}")
    site = row[col["site"]].strip()
    if not site:
        raise ForecastError(f"{path}:{line}: column 'site' is empty")
    capacity = _number(row[col["capacity"]], line, "capacity", path)
    if capacity <= 0:
        raise ForecastError(f"{path}:{line}: column 'capacity': {capacity:g} is not positive")
    free = _number(row[col["free"]], line, "free", path)
    at = row[col["at"]].strip()
    try:
        t = parse_time(at)
    except ValueError:
        raise ForecastError(f"{path}:{line}: column 'at': {at!r} is not an ISO 8601 time") from None
    rows = sites.setdefault(site, SiteRows())
    rows.t.append(t)
    rows.capacity.append(capacity)
    rows.free.append(min(max(free, 0.0), capacity))
    rows.at_text.append(at)
    return int(not 0 <= free <= capacity)


def forecast_all(sites: dict[str, SiteRows], test_from: float, tz: str, horizons: Sequence[float],
                 holidays: Sequence[int] = ()) -> tuple[list[Predictions], dict[str, SiteModel], Prior]:
    """Fit on the rows before ``test_from`` and forecast from every row at or after it."""
    full = {name: rows.series() for name, rows in sites.items()}
    models, prior = fit_many({n: s.before(test_from) for n, s in full.items()}, tz, holidays, horizons)
    out = []
    for name, rows in sites.items():
        s, t = full[name], np.array(rows.t)
        test = np.flatnonzero(t >= test_from)
        order = test[np.argsort(t[test], kind="stable")]
        idx = np.searchsorted(s.t, t[order], side="right") - 1
        free, lo, hi = predict_many(models[name], s, idx, horizons)
        out.append(Predictions(name, [rows.at_text[i] for i in order], t[order], free, lo, hi,
                               models[name].method))
    return out, models, prior


@dataclass(frozen=True, slots=True)
class Score:
    """Errors at one horizon over the scored points, in spaces and in shares of capacity."""

    horizon_min: float
    points: int
    mae: dict[str, float]
    mae_share: dict[str, float]
    coverage80: float
    width80_share: float


def _median_profile(s: Series, train_n: int, tz: str, bin_s: float) -> np.ndarray:
    """Median free spaces per (weekday, bin) of the training rows; NaN where a bin has none."""
    nb = round(DAY_S / bin_s)
    table = np.full((7, nb), np.nan)
    if train_n == 0:
        return table
    lp = local_parts(s.t[:train_n], zone(tz))
    cell = lp.weekday * nb + np.rint(lp.second / bin_s).astype(np.int64) % nb
    free = (s.share * s.capacity)[:train_n]
    order = np.argsort(cell, kind="stable")
    keys, starts = np.unique(cell[order], return_index=True)
    for k, group in zip(keys.tolist(), np.split(free[order], starts[1:]), strict=True):
        table.flat[k] = float(np.median(group))
    return table


def _profile_value(table: np.ndarray, t: np.ndarray, tz: str, bin_s: float) -> np.ndarray:
    lp = local_parts(t, zone(tz))
    nb = table.shape[1]
    out: np.ndarray = table[lp.weekday, np.rint(lp.second / bin_s).astype(np.int64) % nb]
    return out


def score(sites: dict[str, SiteRows], preds: list[Predictions], test_from: float, tz: str,
          horizons: Sequence[float]) -> list[Score]:
    """MAE per horizon of the forecaster and both baselines on the same points, and interval coverage."""
    all_t = np.concatenate([np.sort(np.array(r.t)) for r in sites.values()])
    bin_s = max(cadence_s(all_t), 300.0)
    acc: dict[float, dict[str, list[np.ndarray]]] = {h: {} for h in horizons}
    for p in preds:
        s = sites[p.site].series()
        train_n = int(np.searchsorted(s.t, test_from, side="left"))
        table = _median_profile(s, train_n, tz, bin_s)
        idx = np.searchsorted(s.t, p.origin_t, side="right") - 1
        free_s = s.share * s.capacity
        now, cap = free_s[idx], s.capacity[idx]
        p_now = _profile_value(table, s.t[idx], tz, bin_s)
        gap = max_gap_s(cadence_s(s.t))
        for k, h in enumerate(horizons):
            target = s.t[idx] + 60.0 * h
            actual = observed_at(s.t, free_s, target, gap)
            p_then = _profile_value(table, target, tz, bin_s)
            delta = np.where(np.isnan(p_now) | np.isnan(p_then), now,
                             np.clip(now + p_then - p_now, 0.0, cap))
            ok = np.isfinite(actual)
            parts = acc[h]
            for key, val in (("forecaster", p.free[:, k]), ("persistence", now), ("profile_delta", delta),
                             ("actual", actual), ("capacity", cap), ("lo", p.lo80[:, k]),
                             ("hi", p.hi80[:, k])):
                parts.setdefault(key, []).append(val[ok])
    return [_score(h, {k: np.concatenate(v) for k, v in acc[h].items()}) for h in horizons]


def _score(h: float, a: dict[str, np.ndarray]) -> Score:
    actual, cap = a.get("actual", np.zeros(0)), a.get("capacity", np.zeros(0))
    n = int(actual.size)
    mae, share = {}, {}
    for m in ("forecaster", "persistence", "profile_delta"):
        err = np.abs(a[m] - actual) if n else np.zeros(0)
        mae[m] = float(err.mean()) if n else math.nan
        share[m] = float((err / cap).mean()) if n else math.nan
    inside = (a["lo"] <= actual + 1e-9) & (actual <= a["hi"] + 1e-9) if n else np.zeros(0, dtype=bool)
    width = float(((a["hi"] - a["lo"]) / cap).mean()) if n else math.nan
    return Score(h, n, mae, share, float(inside.mean()) if n else math.nan, width)


def score_json(s: Score) -> dict[str, object]:
    """One horizon's figures as a JSON object."""
    return {"horizon_min": s.horizon_min, "points": s.points,
            "mae": {k: round(v, 3) for k, v in s.mae.items()},
            "mae_share": {k: round(v, 5) for k, v in s.mae_share.items()},
            "ratio_to_profile_delta": round(s.mae["forecaster"] / s.mae["profile_delta"], 4)
            if s.mae["profile_delta"] else None,
            "coverage80": round(s.coverage80, 4), "width80_share": round(s.width80_share, 4)}


def print_scores(scores: list[Score], out: TextIO) -> None:
    """The table ``eval`` prints: MAE in spaces (and % of capacity) per horizon and method."""
    out.write(f"{'horizon':>7} {'points':>7} {'forecaster':>16} {'persistence':>16} {'profile delta':>16} "
              f"{'ratio':>6} {'cover80':>7}\n")
    for s in scores:
        cells = [f"{s.mae[m]:8.2f} ({100 * s.mae_share[m]:4.1f}%)"
                 for m in ("forecaster", "persistence", "profile_delta")]
        ratio = s.mae["forecaster"] / s.mae["profile_delta"] if s.mae["profile_delta"] else float("nan")
        out.write(f"{s.horizon_min:>5g}m {s.points:>7} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} "
                  f"{ratio:6.3f} {100 * s.coverage80:6.1f}%\n")
