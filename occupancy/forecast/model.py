"""A site's forecaster: its fitted state (``SiteModel``), fitting and predicting.

How this works. The share of capacity free at ``t + h`` is predicted as::

    P(t + h) + β_h · x(t)

``P`` is the weekly profile (``occupancy.forecast.profile``) and ``x(t)`` the
causal features of the deviation ``r = share − P`` at the origin
(``occupancy.forecast.series.FEATURES``: a bias, ``r`` now, its change over
the last ``lag_s``, and its mean over the last 3 h, 24 h and 7 days). ``β_h``
is a ridge regression per horizon, fitted on the site's leave-one-day-out
residuals and shrunk towards the coefficients pooled over all sites (or, for
one site alone, towards ``β = (0, 1, 0, …)``, which *is* the profile-delta
baseline ``free(t) + P(t+h) − P(t)``). The 80 % interval adds the 10th and
90th percentiles of the training errors, measured in units of the profile's
spread at the target's time of day (quiet nights get narrow intervals, the
morning rush wide ones), blended with the pooled percentiles when the site has
little data. Everything is clipped to ``[0, capacity]``.

Degrading honestly (``method``): under ``MIN_DAYS_PROFILE`` local days of
history the model is ``persistence`` (``free(t)``, pooled intervals); under
``MIN_DAYS_WEEKLY`` days, or with a weekday never seen, one profile for all
days (``daily-profile+ar``); otherwise ``weekly-profile+ar``.

``SiteModel`` is a small frozen value (a few kB as JSON: ``to_json`` and
``from_json``) meant to be stored in the database and read by API processes;
predicting from it is a few numpy operations over the last week of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occupancy.forecast.daytype import todays_type
from occupancy.forecast.errors import ForecastError
from occupancy.forecast.localtime import LocalParts, local_parts, zone
from occupancy.forecast.profile import Profile, day_types
from occupancy.forecast.series import FEATURES, Series, features, observed_at, occupancy_ratio, with_ratio

FORMAT = 1
MIN_DAYS_PROFILE = 2
MIN_DAYS_WEEKLY = 10
LOOKBACK_S = 7 * 86400.0 + 3600.0  # the rows ``predict`` needs before the origin
_P = len(FEATURES)
_NOW = FEATURES.index("now")
BETA_DELTA = np.eye(_P)[_NOW]  # the profile-delta baseline as coefficients


@dataclass(frozen=True, slots=True)
class SiteModel:
    """The fitted state of one site's forecaster (JSON-serialisable; see ``to_json``)."""

    method: str  # persistence | daily-profile+ar | weekly-profile+ar
    tz: str
    holidays: tuple[int, ...]  # local dates, days since 1970-01-01
    cadence_s: float
    lag_s: float
    gap_s: float
    horizons_min: tuple[float, ...]
    coef: np.ndarray  # (len(horizons_min), len(FEATURES))
    q_lo: np.ndarray  # (len(horizons_min),) 10th percentile of error / scale
    q_hi: np.ndarray  # 90th percentile
    profile: Profile | None  # None for persistence
    scale: np.ndarray  # (n_bins,) spread of the deviation by time of day (share); [1.0] for persistence

    def to_json(self) -> dict[str, Any]:
        """A plain JSON object (lists of rounded floats) that ``from_json`` reads back."""
        p = self.profile
        return {
            "format": FORMAT, "method": self.method, "tz": self.tz, "holidays": list(self.holidays),
            "cadence_s": self.cadence_s, "lag_s": self.lag_s, "gap_s": self.gap_s,
            "horizons_min": list(self.horizons_min), "features": list(FEATURES),
            "coef": _rounded(self.coef), "q_lo": _rounded(self.q_lo), "q_hi": _rounded(self.q_hi),
            "scale": _rounded(self.scale),
            "profile": None if p is None else {"bin_s": p.bin_s, "values": _rounded(p.values),
                                               "clusters": list(p.clusters), "rest_day": p.rest_day},
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> SiteModel:
        """The model ``to_json`` wrote; ``ForecastError`` when it is of another format or malformed."""
        try:
            if data["format"] != FORMAT or list(data["features"]) != list(FEATURES):
                raise ForecastError(f"forecast model format {data['format']} is not {FORMAT}")
            p = data["profile"]
            profile = None if p is None else Profile(
                bin_s=float(p["bin_s"]), values=np.array(p["values"], dtype=float),
                clusters=tuple(int(c) for c in p["clusters"]), rest_day=int(p["rest_day"]))
            return SiteModel(
                method=str(data["method"]), tz=str(data["tz"]),
                holidays=tuple(int(d) for d in data["holidays"]),
                cadence_s=float(data["cadence_s"]), lag_s=float(data["lag_s"]), gap_s=float(data["gap_s"]),
                horizons_min=tuple(float(h) for h in data["horizons_min"]),
                coef=np.array(data["coef"], dtype=float).reshape(-1, _P),
                q_lo=np.array(data["q_lo"], dtype=float), q_hi=np.array(data["q_hi"], dtype=float),
                profile=profile, scale=np.array(data["scale"], dtype=float))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ForecastError):
                raise
            raise ForecastError(f"malformed forecast model: {exc}") from exc


@dataclass(frozen=True, slots=True)
class HorizonForecast:
    minutes: float
    free: float
    lo80: float
    hi80: float


@dataclass(frozen=True, slots=True)
class Forecast:
    at: float  # UTC seconds the horizons count from
    method: str
    horizons: tuple[HorizonForecast, ...]


def _rounded(a: np.ndarray) -> list[Any]:
    out: list[Any] = np.round(np.asarray(a, dtype=float), 6).tolist()
    return out


def deviations(model: SiteModel, series: Series) -> np.ndarray:
    """Each row's share minus the profile at its time (the share itself for persistence)."""
    if model.profile is None:
        return series.share.copy()
    out: np.ndarray = series.share - profile_at(model, series.t)
    return out


def profile_at(model: SiteModel, t: np.ndarray) -> np.ndarray:
    """The model's profile at the UTC instants ``t`` (zero for persistence)."""
    if model.profile is None:
        return np.zeros(np.shape(t))
    lp = local_parts(t, zone(model.tz))
    types = day_types(lp.day, lp.weekday, frozenset(model.holidays))
    return model.profile.at(types, lp.second)


def scale_at(model: SiteModel, t: np.ndarray, lp: LocalParts | None = None) -> np.ndarray:
    """The deviation's spread at the local time of day of ``t`` (1 for persistence)."""
    if model.profile is None:
        return np.ones(np.shape(t))
    lp = lp if lp is not None else local_parts(t, zone(model.tz))
    nb = model.scale.size
    return model.scale[np.rint(lp.second / (86400.0 / nb)).astype(np.int64) % nb]


def at_horizon(model: SiteModel, minutes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients and percentiles at any horizons: linear between the fitted ones, from
    (profile delta, zero width) at 0 minutes, flat beyond the longest."""
    grid = np.concatenate(([0.0], model.horizons_min))
    coef = np.vstack((BETA_DELTA, model.coef))
    m = np.asarray(minutes, dtype=float)
    beta = np.column_stack([np.interp(m, grid, coef[:, j]) for j in range(_P)])
    lo = np.interp(m, grid, np.concatenate(([0.0], model.q_lo)))
    hi = np.interp(m, grid, np.concatenate(([0.0], model.q_hi)))
    return beta, lo, hi


def predict_many(model: SiteModel, series: Series, idx: np.ndarray, horizons_min: Sequence[float],
                 lead_s: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free spaces, lo80 and hi80 (each ``(len(idx), len(horizons_min))``) from origins ``series[idx]``.

    Only rows ``0..idx`` reach the forecast of origin ``idx``. ``lead_s`` (per origin, default 0)
    moves the instant the horizons count from past the origin row (an API read some minutes
    after the last observation).
    """
    idx = np.asarray(idx, dtype=np.int64)
    lead = np.zeros(idx.size) if lead_s is None else np.asarray(lead_s, dtype=float)
    origin = _origins(model, series, idx)
    cap = series.capacity[idx]
    shape = (idx.size, len(horizons_min))
    free, lo, hi = np.empty(shape), np.empty(shape), np.empty(shape)
    for k, h in enumerate(horizons_min):
        eff = h + lead / 60.0
        beta, q_lo, q_hi = at_horizon(model, eff)
        target = series.t[idx] + eff * 60.0
        lp = local_parts(target, zone(model.tz))
        p_then = _profile_then(model, origin, lp)
        ratio = occupancy_ratio(origin.p_now, p_then) if model.profile is not None else np.ones(idx.size)
        share = np.clip(p_then + np.sum(with_ratio(origin.x, ratio) * beta, axis=1), 0.0, 1.0)
        spread = scale_at(model, target, lp)
        free[:, k] = share * cap
        lo[:, k] = np.clip(share + q_lo * spread, 0.0, 1.0) * cap
        hi[:, k] = np.clip(share + q_hi * spread, 0.0, 1.0) * cap
    return free, lo, hi


@dataclass(frozen=True, slots=True)
class _Origins:
    x: np.ndarray  # base features
    p_now: np.ndarray  # profile at the origin
    day: np.ndarray  # local date of the origin
    today: np.ndarray  # the day type the rest of the origin's day is forecast with


def _origins(model: SiteModel, series: Series, idx: np.ndarray) -> _Origins:
    """Features of the origins, with the deviations of a day re-read under ``todays_type``."""
    if model.profile is None:
        x = features(series.t, series.share, idx, model.lag_s, model.gap_s)
        zero = np.zeros(idx.size, dtype=np.int64)
        return _Origins(x, np.zeros(idx.size), zero, zero)
    lp = local_parts(series.t, zone(model.tz))
    calendar = day_types(lp.day, lp.weekday, frozenset(model.holidays))
    today = todays_type(model.profile, lp.day, lp.second, calendar, series.share, idx)
    p_rows = model.profile.at(calendar, lp.second)
    x = features(series.t, series.share - p_rows, idx, model.lag_s, model.gap_s)
    p_now = p_rows[idx].copy()
    moved = np.flatnonzero(today != calendar[idx])
    for d, k in {(int(lp.day[idx[i]]), int(today[i])) for i in moved.tolist()}:
        group = moved[(lp.day[idx[moved]] == d) & (today[moved] == k)]
        types = np.where(lp.day == d, k, calendar)
        p_k = model.profile.at(types, lp.second)
        x[group] = features(series.t, series.share - p_k, idx[group], model.lag_s, model.gap_s)
        p_now[group] = p_k[idx[group]]
    return _Origins(x, p_now, lp.day[idx], today)


def _profile_then(model: SiteModel, origin: _Origins, lp: LocalParts) -> np.ndarray:
    """The profile at the targets: today's type while the target is on the origin's day."""
    if model.profile is None:
        return np.zeros(lp.day.size)
    types = day_types(lp.day, lp.weekday, frozenset(model.holidays))
    types = np.where(lp.day == origin.day, origin.today, types)
    return model.profile.at(types, lp.second)


def predict(model: SiteModel, recent: Series, at: float, horizons_min: Sequence[float]) -> Forecast:
    """The forecast at ``at`` (UTC seconds) from the site's rows up to ``at``.

    ``recent`` should hold the last ``LOOKBACK_S`` of rows (more is harmless, rows after ``at``
    are ignored). The origin is the last row at or before ``at``; ``ForecastError`` when there is none.
    """
    n = int(np.searchsorted(recent.t, at, side="right"))
    if n == 0:
        raise ForecastError("no observation at or before the forecast time")
    start = int(np.searchsorted(recent.t, recent.t[n - 1] - LOOKBACK_S, side="left"))
    window = Series(recent.t[start:n], recent.share[start:n], recent.capacity[start:n])
    origin = np.array([n - 1 - start])
    free, lo, hi = predict_many(model, window, origin, horizons_min, np.array([at - recent.t[n - 1]]))
    rows = tuple(HorizonForecast(float(h), float(free[0, k]), float(lo[0, k]), float(hi[0, k]))
                 for k, h in enumerate(horizons_min))
    return Forecast(at=float(at), method=model.method, horizons=rows)


def actual_deviation(series: Series, r: np.ndarray, minutes: float, gap_s: float) -> np.ndarray:
    """The observed deviation ``minutes`` after every row (NaN where nothing was observed)."""
    return observed_at(series.t, r, series.t + 60.0 * minutes, gap_s)
