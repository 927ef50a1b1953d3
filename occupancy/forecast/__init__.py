"""Free-space forecasts of a site: "how many bays will be free in 30 minutes?"

Pure (numpy only, no I/O but ``evaluate.read_csv``). The pieces:

- ``series``: a site's rows as arrays, the rule for what was observed between
  rows, and the causal features of a forecast origin;
- ``profile``: the weekly profile (weekday × time of day, weekdays clustered
  by similarity, holidays, leave-one-day-out values for honest fitting);
- ``model``: ``SiteModel`` (the fitted state, JSON-serialisable), ``predict``
  and ``predict_many``;
- ``fit``: ``fit`` one site, ``fit_many`` a city with pooling (``Prior``);
- ``counts``: a site's live counts (free / occupied / total) as rows, the rule
  ingest's maintenance and the API share;
- ``evaluate``: the CSV backtest behind ``parkbazaar forecast predict|eval``
  and ``bench/forecast.py``.

The method and what was measured are in docs/forecast.md.

Exceptions::

    ForecastError     bad input: a CSV row, a time zone, a holiday, a stored model
                      (an ``OccupancyError`` and a ``ValueError``)
"""

from __future__ import annotations

from occupancy.forecast.errors import ForecastError
from occupancy.forecast.fit import DEFAULT_HORIZONS, Prior, fit, fit_many
from occupancy.forecast.model import Forecast, HorizonForecast, SiteModel, predict, predict_many
from occupancy.forecast.series import Series

__all__ = [
    "DEFAULT_HORIZONS",
    "Forecast",
    "ForecastError",
    "HorizonForecast",
    "Prior",
    "Series",
    "SiteModel",
    "fit",
    "fit_many",
    "predict",
    "predict_many",
]
