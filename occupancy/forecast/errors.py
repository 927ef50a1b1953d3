"""The one exception of ``occupancy.forecast``."""

from __future__ import annotations

from occupancy import OccupancyError


class ForecastError(OccupancyError, ValueError):
    """Bad input to the forecaster: a malformed CSV row, an unknown zone, an unusable model."""
