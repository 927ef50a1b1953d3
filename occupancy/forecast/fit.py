"""Fitting ``SiteModel``s: one site alone (``fit``) or many at once, pooled (``fit_many``).

How this works. For each site with enough history: the profile and every
row's leave-one-day-out deviation (``profile.fit_profile``), the spread of
that deviation by time of day, and per horizon the normal equations
``XᵀX, Xᵀy`` of "deviation at t + h" on the causal features at t (pairs
whose target was not observed, by ``series.observed_at``, are left out).
``fit_many`` adds the normal equations of all sites into pooled coefficients
(a ``Prior``), and pooled error percentiles; each site's coefficients are
then a ridge fit shrunk towards the pooled ones with the weight of
``PRIOR_DAYS_AR`` days of data, and its percentiles a blend weighted by days.
``fit`` does the same for one site against ``Prior.default`` (profile delta,
rough interval widths) or a prior given by the caller, e.g. one stored from
the last ``fit_many`` of the tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from occupancy.forecast.localtime import DAY_S, LocalParts, local_parts, zone
from occupancy.forecast.model import (
    BETA_DELTA,
    MIN_DAYS_PROFILE,
    MIN_DAYS_WEEKLY,
    SiteModel,
    actual_deviation,
)
from occupancy.forecast.profile import Profile, day_types, fit_profile
from occupancy.forecast.series import (
    FEATURES,
    Series,
    cadence_s,
    features,
    max_gap_s,
    occupancy_ratio,
    with_ratio,
)

DEFAULT_HORIZONS = (15.0, 30.0, 45.0, 60.0, 90.0, 120.0)
PRIOR_DAYS_AR = 7.0  # the pooled coefficients weigh like this many days of the site's own pairs
PRIOR_DAYS_Q = 14.0  # the pooled percentiles weigh like this many days of the site's own errors
QUANTILES = (0.1, 0.9)
_SAMPLE = 4000  # errors per site and horizon that go into the pooled percentiles
_P = len(FEATURES)


@dataclass(frozen=True, slots=True)
class Prior:
    """What a site with little data borrows: coefficients and error percentiles per horizon.

    ``q_*`` are percentiles of the regression's error in units of the profile's spread;
    ``p_*`` of persistence's error in shares of capacity (for sites without a profile).
    """

    horizons_min: tuple[float, ...]
    coef: np.ndarray
    q_lo: np.ndarray
    q_hi: np.ndarray
    p_lo: np.ndarray
    p_hi: np.ndarray

    @staticmethod
    def default(horizons_min: Sequence[float]) -> Prior:
        """Profile delta, with rough widths (a tenth to a fifth of capacity at an hour)."""
        h = np.asarray(horizons_min, dtype=float)
        q = 1.28 * np.minimum(1.0, 0.3 + h / 100.0)
        p = 0.02 + 0.08 * np.minimum(h, 120.0) / 60.0
        return Prior(tuple(float(v) for v in h), np.tile(BETA_DELTA, (h.size, 1)), -q, q, -p, p)


@dataclass(frozen=True, slots=True)
class _Prepared:
    series: Series
    method: str
    profile: Profile | None
    r: np.ndarray  # leave-one-day-out deviations
    scale: np.ndarray
    cadence: float
    days: int
    xtx: np.ndarray  # (n_h, P, P)
    xty: np.ndarray  # (n_h, P)
    n: np.ndarray  # (n_h,)


def _method(lp: LocalParts) -> str:
    days = np.unique(lp.day)
    if days.size < MIN_DAYS_PROFILE:
        return "persistence"
    if days.size < MIN_DAYS_WEEKLY or np.unique(lp.weekday).size < 7:
        return "daily-profile+ar"
    return "weekly-profile+ar"


def _spread(second: np.ndarray, r: np.ndarray, bin_s: float) -> np.ndarray:
    """RMS deviation by time-of-day bin, smoothed over ±1 h, floored so nights are never certain."""
    nb = max(1, round(DAY_S / bin_s))
    b = np.rint(second / bin_s).astype(np.int64) % nb
    s = np.bincount(b, weights=r * r, minlength=nb)
    n = np.bincount(b, minlength=nb).astype(float)
    half = max(1, round(3600.0 / bin_s))
    ss, nn = np.zeros(nb), np.zeros(nb)
    for o in range(-half, half + 1):
        ss += np.roll(s, o)
        nn += np.roll(n, o)
    overall = float(np.sqrt(s.sum() / max(n.sum(), 1.0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(ss / nn)
    rms = np.where(nn > 0, rms, overall)
    return np.maximum(rms, 0.25 * overall + 0.002)


def _lag(cadence: float) -> float:
    return max(cadence, 900.0)


def _prepare(series: Series, tz: str, holidays: frozenset[int], horizons: Sequence[float]) -> _Prepared:
    lp = local_parts(series.t, zone(tz))
    method = _method(lp)
    cadence = cadence_s(series.t)
    n_h = len(horizons)
    empty = _Prepared(series, "persistence", None, series.share, np.ones(1), cadence, 0,
                      np.zeros((n_h, _P, _P)), np.zeros((n_h, _P)), np.zeros(n_h))
    if method == "persistence":
        return empty
    bin_s = max(cadence, 300.0)
    types = day_types(lp.day, lp.weekday, holidays)
    profile, loo = fit_profile(lp.day, lp.second, types, series.share, bin_s,
                               weekly=method == "weekly-profile+ar")
    r = series.share - loo
    gap = max_gap_s(cadence)
    base = features(series.t, r, np.arange(len(series)), _lag(cadence), gap)
    xtx, xty, n = np.zeros((n_h, _P, _P)), np.zeros((n_h, _P)), np.zeros(n_h)
    for k, h in enumerate(horizons):
        y = actual_deviation(series, r, h, gap)
        ok = np.isfinite(y)
        x = _design(base, loo, profile, series.t + 60.0 * h, tz, holidays)
        xtx[k], xty[k], n[k] = x[ok].T @ x[ok], x[ok].T @ y[ok], ok.sum()
    return _Prepared(series, method, profile, r, _spread(lp.second, r, bin_s), cadence,
                     int(np.unique(lp.day).size), xtx, xty, n)


def _design(base: np.ndarray, p_now: np.ndarray, profile: Profile, target: np.ndarray, tz: str,
            holidays: frozenset[int]) -> np.ndarray:
    """All features of every row for targets ``target``: the base ones and ``now_scaled``."""
    lp = local_parts(target, zone(tz))
    p_then = profile.at(day_types(lp.day, lp.weekday, holidays), lp.second)
    return with_ratio(base, occupancy_ratio(p_now, p_then))


def _ridge(xtx: np.ndarray, xty: np.ndarray, n: float, prior: np.ndarray, prior_n: float) -> np.ndarray:
    lam = np.diag(prior_n * np.maximum(np.diag(xtx), 1e-12) / max(n, 1.0) + 1e-9)
    out: np.ndarray = np.linalg.solve(xtx + lam, xty + lam @ prior)
    return out


def _coef(p: _Prepared, prior: Prior) -> np.ndarray:
    per_day = float(len(p.series)) / max(p.days, 1)
    return np.array([_ridge(p.xtx[k], p.xty[k], p.n[k], prior.coef[k], PRIOR_DAYS_AR * per_day)
                     for k in range(p.n.size)])


def _errors(p: _Prepared, coef: np.ndarray, horizons: Sequence[float], tz: str,
            holidays: frozenset[int]) -> list[np.ndarray]:
    """The site's training errors per horizon, in units of the profile's spread at the target."""
    assert p.profile is not None
    gap = max_gap_s(p.cadence)
    base = features(p.series.t, p.r, np.arange(len(p.series)), _lag(p.cadence), gap)
    out = []
    nb = p.scale.size
    for k, h in enumerate(horizons):
        y = actual_deviation(p.series, p.r, h, gap)
        ok = np.isfinite(y)
        then = p.series.t[ok] + 60.0 * h
        x = _design(base[ok], p.series.share[ok] - p.r[ok], p.profile, then, tz, holidays)
        target = local_parts(then, zone(tz)).second
        spread = p.scale[np.rint(target / (DAY_S / nb)).astype(np.int64) % nb]
        out.append((y[ok] - x @ coef[k]) / spread)
    return out


def _persistence_errors(series: Series, horizons: Sequence[float]) -> list[np.ndarray]:
    gap = max_gap_s(cadence_s(series.t))
    out = []
    for h in horizons:
        y = actual_deviation(series, series.share, h, gap)
        ok = np.isfinite(y)
        out.append(y[ok] - series.share[ok])
    return out


def _blend(errors: np.ndarray, q: float, days: int, prior: float) -> float:
    """The site's ``q`` percentile of ``errors`` pulled towards the pooled one, by days of data."""
    if errors.size < 20:
        return prior
    w = days / (days + PRIOR_DAYS_Q)
    return float(w * np.quantile(errors, q) + (1 - w) * prior)


def _model(p: _Prepared, prior: Prior, tz: str, holidays: frozenset[int],
           horizons: tuple[float, ...]) -> SiteModel:
    gap, lag = max_gap_s(p.cadence), _lag(p.cadence)
    hol = tuple(sorted(holidays))
    if p.profile is None:
        return SiteModel("persistence", tz, hol, p.cadence, lag, gap, horizons,
                         np.tile(BETA_DELTA, (len(horizons), 1)), prior.p_lo.copy(), prior.p_hi.copy(),
                         None, np.ones(1))
    coef = _coef(p, prior)
    errs = _errors(p, coef, horizons, tz, holidays)
    q_lo = np.array([_blend(e, QUANTILES[0], p.days, prior.q_lo[k]) for k, e in enumerate(errs)])
    q_hi = np.array([_blend(e, QUANTILES[1], p.days, prior.q_hi[k]) for k, e in enumerate(errs)])
    return SiteModel(p.method, tz, hol, p.cadence, lag, gap, horizons, coef, q_lo, q_hi, p.profile, p.scale)


def fit(series: Series, tz: str, holidays: Iterable[int] = (),
        horizons_min: Sequence[float] = DEFAULT_HORIZONS, prior: Prior | None = None) -> SiteModel:
    """The model of one site from its history (``series``: only the rows to learn from)."""
    horizons = tuple(float(h) for h in horizons_min)
    hol = frozenset(holidays)
    pri = prior if prior is not None else Prior.default(horizons)
    return _model(_prepare(series, tz, hol, horizons), pri, tz, hol, horizons)


def fit_many(sites: Mapping[str, Series], tz: str, holidays: Iterable[int] = (),
             horizons_min: Sequence[float] = DEFAULT_HORIZONS) -> tuple[dict[str, SiteModel], Prior]:
    """The models of many sites of one zone, each shrunk towards what they share, and that prior."""
    horizons = tuple(float(h) for h in horizons_min)
    hol = frozenset(holidays)
    prepared = {name: _prepare(s, tz, hol, horizons) for name, s in sites.items()}
    prior = _pooled(prepared, tz, hol, horizons)
    return {name: _model(p, prior, tz, hol, horizons) for name, p in prepared.items()}, prior


def _pooled(prepared: Mapping[str, _Prepared], tz: str, holidays: frozenset[int],
            horizons: tuple[float, ...]) -> Prior:
    base = Prior.default(horizons)
    with_profile = [p for p in prepared.values() if p.profile is not None]
    if not prepared:
        return base
    rng = np.random.default_rng(0)
    coef = base.coef.copy()
    if with_profile:
        xtx = np.sum([p.xtx for p in with_profile], axis=0)
        xty = np.sum([p.xty for p in with_profile], axis=0)
        n = np.sum([p.n for p in with_profile], axis=0)
        coef = np.array([_ridge(xtx[k], xty[k], n[k], base.coef[k], 1.0) for k in range(len(horizons))])
    fitted = Prior(horizons, coef, base.q_lo, base.q_hi, base.p_lo, base.p_hi)
    errors = [_errors(p, coef, horizons, tz, holidays) for p in with_profile]
    q = _pooled_quantiles(errors, len(horizons), rng)
    pq = _pooled_quantiles([_persistence_errors(p.series, horizons) for p in prepared.values()
                            if len(p.series) > 1], len(horizons), rng)
    return Prior(horizons, coef,
                 q[0] if q is not None else fitted.q_lo, q[1] if q is not None else fitted.q_hi,
                 pq[0] if pq is not None else fitted.p_lo, pq[1] if pq is not None else fitted.p_hi)


def _pooled_quantiles(errors: list[list[np.ndarray]], n_h: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    lo, hi = np.zeros(n_h), np.zeros(n_h)
    for k in range(n_h):
        parts = [e[k] if e[k].size <= _SAMPLE else rng.choice(e[k], _SAMPLE, replace=False) for e in errors]
        allk = np.concatenate(parts) if parts else np.zeros(0)
        if allk.size < 20:
            return None
        lo[k], hi[k] = np.quantile(allk, QUANTILES)
    return lo, hi
