"""Forecasts of the public reads: a site's free spaces ahead, from the model that
ingest's maintenance stored (``site_forecasts``) and the site's recent counts.

How this works (pure: the route runs ``queries.forecast_inputs`` and hands the
result here). The rows a prediction starts from are the site's stored 5-minute
counts of the last week and an hour (``occupancy.forecast.model.LOOKBACK_S``)
plus the live counts at the request's instant, all read by the one rule of
``occupancy.forecast.counts``; the origin is the newest usable row. The model
is the stored one; a site without one (new, or not fitted yet) or with one this
version cannot read gets ``persistence`` (the current count carried forward,
with the rough interval widths of ``occupancy.forecast.Prior.default``) and a
``note`` saying so. A site of which nothing usable is known in the last week
gets ``method: "none"`` and no horizons. A parsed model is kept per site and
``fitted_at`` (``ModelCache``), so a read does not parse the same JSON twice.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

import numpy as np

from dashboard_api.schemas import ArrivalForecast, ForecastMethod, HorizonForecast, SiteForecast
from occupancy.forecast import ForecastError, Series, SiteModel, fit, predict
from occupancy.forecast.counts import series_of_counts
from occupancy.forecast.model import LOOKBACK_S

log = logging.getLogger(__name__)

DEFAULT_HORIZONS = "15,30,60"
MAX_HORIZON_MIN = 120
MAX_HORIZONS = 12
MAX_ARRIVAL_SITES = 20  # `/v1/sites?arrive_in=`: the nearest this many get a forecast (~1-4 ms each)
LOOKBACK = timedelta(seconds=LOOKBACK_S)
_NUMBER = re.compile(r"[0-9]{1,4}")  # ASCII digits only: \d would take "٣" too
NO_MODEL = "no model fitted for this site yet: its current count carried forward"
BAD_MODEL = "the site's stored model cannot be read: its current count carried forward"
NOTHING = "nothing known of this site in the last week"


def parse_horizons(text: str) -> tuple[int, ...]:
    """``"15,30,60"`` → (15, 30, 60), duplicates dropped; ``ValueError`` saying what is wrong (pure)."""
    parts = [p.strip() for p in text.split(",")]
    bad = [p for p in parts if not _NUMBER.fullmatch(p) or not 1 <= int(p) <= MAX_HORIZON_MIN]
    if bad or not text.strip():
        shown = ", ".join(repr(p) for p in bad) or repr(text)
        raise ValueError(f"horizons must be whole minutes from 1 to {MAX_HORIZON_MIN}, comma-separated "
                         f"(e.g. 15,30,60); not {shown}")
    out = tuple(dict.fromkeys(int(p) for p in parts))
    if len(out) > MAX_HORIZONS:
        raise ValueError(f"at most {MAX_HORIZONS} horizons a request, got {len(out)}")
    return out


@dataclass(frozen=True, slots=True)
class ForecastInput:
    """One site's live counts, stored model (JSON) and recent 5-minute counts (``queries``)."""

    timezone: str
    free: int
    occupied: int
    total: int
    fitted_at: datetime | None
    model: dict[str, Any] | None
    t: Sequence[float] = ()
    r_free: Sequence[int] = ()
    r_occupied: Sequence[int] = ()
    r_total: Sequence[int] = ()


@dataclass(slots=True)
class ModelCache:
    """Parsed models by (tenant, site), each with the ``fitted_at`` it was parsed for."""

    max_entries: int = 4096
    _models: dict[tuple[str, str], tuple[datetime, SiteModel]] = field(default_factory=dict)

    def model(self, key: tuple[str, str], inp: ForecastInput) -> SiteModel | None:
        """The site's stored model (None: none stored); ``ForecastError`` when unreadable."""
        if inp.model is None or inp.fitted_at is None:
            return None
        held = self._models.get(key)
        if held is not None and held[0] == inp.fitted_at:
            return held[1]
        parsed = SiteModel.from_json(inp.model)
        if len(self._models) >= self.max_entries:
            self._models.clear()
        self._models[key] = (inp.fitted_at, parsed)
        return parsed


@lru_cache(maxsize=1)
def _persistence() -> SiteModel:
    """The model of a site with no history: its count carried forward, rough widths."""
    return fit(Series.of(np.zeros(0), np.zeros(0), np.zeros(0)), "UTC")


def recent_series(inp: ForecastInput, now: datetime) -> Series:
    """The stored counts and the live counts at ``now``, as forecaster rows (pure)."""
    t = [*inp.t, now.timestamp()]
    return series_of_counts(t, [*inp.r_free, inp.free], [*inp.r_occupied, inp.occupied],
                            [*inp.r_total, inp.total])


def site_forecast(key: tuple[str, str], inp: ForecastInput, *, now: datetime, horizons: Sequence[int],
                  models: ModelCache) -> SiteForecast:
    """The forecast of one site at ``now`` for ``horizons`` minutes."""
    model, note = _model_of(key, inp, models)
    recent = recent_series(inp, now)
    if len(recent) == 0:
        return SiteForecast(tenant=key[0], site=key[1], at=now, method="none", capacity=inp.total,
                            observed_at=None, fitted_at=inp.fitted_at, note=NOTHING, horizons=[])
    f = predict(model, recent, now.timestamp(), [float(h) for h in horizons])
    rows = [HorizonForecast(minutes=int(h.minutes), free=round(h.free, 1), lo80=_whole(h.lo80),
                            hi80=_whole(h.hi80)) for h in f.horizons]
    return SiteForecast(tenant=key[0], site=key[1], at=now, method=cast(ForecastMethod, f.method),
                        capacity=inp.total, observed_at=datetime.fromtimestamp(float(recent.t[-1]), UTC),
                        fitted_at=inp.fitted_at, note=note, horizons=rows)


def arrival(forecast: SiteForecast) -> ArrivalForecast | None:
    """The first horizon of a forecast as the forecast on arrival (None: nothing known)."""
    if not forecast.horizons:
        return None
    h = forecast.horizons[0]
    return ArrivalForecast(minutes=h.minutes, free=h.free, lo80=h.lo80, hi80=h.hi80, method=forecast.method)


def _model_of(key: tuple[str, str], inp: ForecastInput, models: ModelCache) -> tuple[SiteModel, str | None]:
    try:
        stored = models.model(key, inp)
    except ForecastError as exc:
        log.warning("forecast model of %s/%s is unreadable: %s", key[0], key[1], exc)
        return _persistence(), BAD_MODEL
    return (stored, None) if stored is not None else (_persistence(), NO_MODEL)


def _whole(spaces: float) -> int:
    return math.floor(spaces + 0.5)
