"""Response models of the API: frozen pydantic values, documented for OpenAPI."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from occupancy.model import SpaceState

SiteKind = Literal["parking", "market"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class SiteSummary(_Frozen):
    """A site with its live counts; ``free + occupied + unknown == total``."""

    tenant: str = Field(description="tenant (municipality) id", examples=["shiraz"])
    site: str = Field(description="site id within the tenant", examples=["central-lot"])
    kind: SiteKind
    name: str
    name_fa: str | None = Field(description="Persian name")
    lat: float
    lon: float
    timezone: str = Field(description="the tenant's IANA time zone", examples=["Asia/Tehran"])
    total: int = Field(description="spaces (bays or stalls) of the site")
    free: int = Field(description="spaces freshly observed free")
    occupied: int = Field(description="spaces freshly observed occupied")
    unknown: int = Field(description="spaces with no fresh, trustworthy observation")
    updated_at: datetime | None = Field(description="newest observation of any space of the site")
    stale: bool | None = Field(
        description="updated_at is older than the site's staleness bound (null: never observed)"
    )
    distance_m: float | None = Field(description="great-circle distance from `near`, metres")


class ZoneSummary(_Frozen):
    """A zone (level, row, hall) of a site with its live counts."""

    zone: str
    name: str | None
    name_fa: str | None
    total: int
    free: int
    occupied: int
    unknown: int


class SiteDetail(SiteSummary):
    """One site: the summary plus its zones, address and opening hours."""

    address: str | None
    opening_hours: dict[str, Any] | None = Field(
        description='as in the site file, e.g. {"open": "07:00", "close": "21:00"}'
    )
    stale_after_s: int = Field(description="an observation older than this is not trusted")
    zones: list[ZoneSummary]


class SpaceStatus(_Frozen):
    """One space and its state as counted (see the counting rule in docs/api.md)."""

    space: str = Field(examples=["A-013"])
    zone: str | None
    state: SpaceState = Field(description="free, occupied, or unknown")
    observed_at: datetime | None = Field(description="time of the last observation, if any")
    source: str | None = Field(description="sensor, camera, lorawan, manual or simulator")
    stale: bool | None = Field(description="the last observation is too old (null: none)")
    attributes: dict[str, Any] = Field(description="disabled, ev_charger, category, vendor, …")


class Readiness(_Frozen):
    """Whether this API process can serve requests."""

    status: Literal["ok", "unavailable"]
    reason: str | None = None


class Problem(_Frozen):
    """An error: ``detail`` says what went wrong."""

    detail: str


# What each error status means, for the ``responses`` of the operations (422 is FastAPI's
# own validation list, which ``BadInput`` answers in the same shape).
PROBLEM_STATUSES: dict[int, str] = {
    400: "the body cannot be read as JSON text (not UTF-8)",
    401: "no bearer token, or not a valid one",
    403: "the token has no rights over this tenant or site",
    404: "no such tenant, site or row",
    409: "exists already",
    413: "the request body is larger than the limit (`api.max_body_bytes`)",
    429: "rate limit of this address (`Retry-After` says when to come back)",
    503: "the database is unavailable, or every slot for expensive reads is taken, or the read "
         "took too long (`Retry-After`)",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each a ``Problem``."""
    return {s: {"model": Problem, "description": PROBLEM_STATUSES[s]} for s in statuses}


class HistoryPoint(_Frozen):
    """The counts at one instant of the grid (a step function: each count holds until it changes)."""

    at: datetime
    free: int
    occupied: int
    unknown: int
    total: int


class History(_Frozen):
    """Counts of a site at every step of ``[from, to]``; ``from`` is aligned down to the step."""

    tenant: str
    site: str
    step_s: int
    timezone: str
    points: list[HistoryPoint]


ForecastMethod = Literal["weekly-profile+ar", "daily-profile+ar", "persistence", "none"]


class HorizonForecast(_Frozen):
    """Free spaces expected ``minutes`` after ``at``, with an 80 % interval."""

    minutes: int = Field(ge=0, le=120, examples=[30])
    free: float = Field(description="expected free spaces (one decimal)", examples=[41.2])
    lo80: int = Field(description="10th percentile: at least this many free 9 times in 10", examples=[33])
    hi80: int = Field(description="90th percentile", examples=[49])


class SiteForecast(_Frozen):
    """A site's free spaces ahead (docs/forecast.md): `method` says what the forecast rests on."""

    tenant: str
    site: str
    at: datetime = Field(description="the instant the horizons count from (the request's time)")
    method: ForecastMethod = Field(description=(
        "`weekly-profile+ar` (weekday × time of day and the recent trend), `daily-profile+ar` "
        "(one profile for all days: under 10 days of history), `persistence` (the current count "
        "carried forward: a site under 2 days of history or not fitted yet), `none` (nothing "
        "known in the last week: no horizons)"))
    capacity: int = Field(description="the site's spaces now")
    observed_at: datetime | None = Field(
        description="the newest counts the forecast starts from (null with method `none`)")
    fitted_at: datetime | None = Field(description="when the site's model was fitted (null: none yet)")
    note: str | None = Field(description="why the forecast is simpler than the site's model, if it is")
    horizons: list[HorizonForecast]


class ArrivalForecast(_Frozen):
    """A site's expected free spaces on arrival (``/v1/sites?near=…&arrive_in=N``)."""

    minutes: int = Field(ge=0, le=120)
    free: float
    lo80: int
    hi80: int
    method: ForecastMethod


class SiteArrival(SiteSummary):
    """A site near the point, with its forecast on arrival (present with `arrive_in`; null when
    nothing is known of the site in the last week)."""

    forecast: ArrivalForecast | None = None


class StallDay(_Frozen):
    """One stall's attendance on a market day, within the opening hours (local time)."""

    space: str
    zone: str | None
    vendor: str | None
    category: str | None
    first_arrival: datetime | None = Field(description="first time occupied within the opening hours")
    last_departure: datetime | None = Field(description="last time it became free within the hours")
    minutes_occupied: float
    absent: bool = Field(description="never occupied within the opening hours")


class Attendance(_Frozen):
    """Vendor attendance of a market on one local day."""

    tenant: str
    site: str
    date: str = Field(description="local date, ISO (Gregorian)")
    date_jalali: str = Field(description="the same date in the Solar Hijri calendar, YYYY-MM-DD")
    timezone: str
    opens_at: datetime | None
    closes_at: datetime | None
    closed: bool = Field(description="the market does not open that day")
    stalls: list[StallDay]


class HourUse(_Frozen):
    """Share of stall-time occupied in one local hour of day over a date range."""

    hour: int = Field(ge=0, le=23)
    utilization: float = Field(ge=0, le=1)
    occupied_minutes: float
    stall_minutes: float


class Utilization(_Frozen):
    tenant: str
    site: str
    start: str
    end: str
    start_jalali: str
    end_jalali: str
    timezone: str
    hours: list[HourUse]


class Alert(_Frozen):
    """Something a manager or operator should look at."""

    kind: Literal["device_silent", "gateway_offline", "battery_low", "stall_absent"]
    site: str | None
    subject: str = Field(description="device, gateway or stall id")
    since: datetime | None = Field(description="last heard / went offline / expected since")
    detail: str
