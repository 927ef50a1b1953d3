"""Request bodies of the operators' API: frozen pydantic models that refuse, at the edge,
what the database could not hold or the registry could not use.

Every body refuses unknown keys; numbers must be finite (``NaN`` and ``Infinity``,
which Python's JSON parser accepts, are refused) and no string may contain a NUL
character, anywhere in the body (free-form ``attributes`` and polygons included):
``json_value_problem`` walks the raw value once. A PATCH sets only the keys it
sends; an explicit ``null`` clears a column that may be empty (``name_fa``,
``address``, ``opening_hours``, a space's zone, a device's DevEUI, gateway, model
or occupied path) and is refused for one that may not (``NOT_NULL`` of each model).
A device's LoRaWAN keys are checked against the row a write would leave
(``dashboard_api.devices``), not here: a PATCH may send one key of several.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from occupancy.sitefile import Hours

SLUG = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
SITE_SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
MAX_DEPTH = 32


def json_value_problem(value: Any, where: str = "", depth: int = 0) -> str | None:
    """What makes a parsed JSON value unusable — a non-finite number, a NUL in a string or
    key, nesting deeper than MAX_DEPTH — with where it is (``zones.0.name``), or None (pure)."""
    at = where or "the body"
    if depth > MAX_DEPTH:
        return f"{at}: nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{at}: numbers must be finite (no NaN or Infinity)"
    if isinstance(value, str) and "\x00" in value:
        return f"{at}: text may not contain a NUL character"
    items: Any = (value.items() if isinstance(value, dict)
                  else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        path = f"{where}.{key}" if where else str(key)
        found = json_value_problem(key, where, depth + 1) or json_value_problem(item, path, depth + 1)
        if found:
            return found
    return None


class Body(BaseModel):
    """Base of the request bodies: no unknown keys, clean values, no null where none may be."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    NOT_NULL: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        problem = json_value_problem(data)
        if problem:
            raise ValueError(problem)
        if isinstance(data, dict):
            nulls = sorted(k for k in cls.NOT_NULL if k in data and data[k] is None)
            if nulls:
                raise ValueError(f"{', '.join(nulls)} may not be null (leave the key out to keep the value)")
        return data


class SitePatch(Body):
    NOT_NULL = frozenset({"kind", "name", "lat", "lon", "stale_after_s"})
    kind: Literal["parking", "market"] | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_fa: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    opening_hours: Hours | None = None
    stale_after_s: int | None = Field(default=None, ge=10, le=7 * 86400)


class SiteIn(SitePatch):
    id: str = Field(pattern=SITE_SLUG)
    kind: Literal["parking", "market"]
    name: str = Field(min_length=1, max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class ZonePatch(Body):
    name: str | None = Field(default=None, max_length=200)
    name_fa: str | None = Field(default=None, max_length=200)


class ZoneIn(ZonePatch):
    id: str = Field(pattern=SLUG)


class SpacePatch(Body):
    NOT_NULL = frozenset({"attributes"})
    zone: str | None = Field(default=None, pattern=SLUG)
    attributes: dict[str, Any] | None = None


class SpaceIn(SpacePatch):
    id: str = Field(pattern=SLUG)


class GatewayPatch(Body):
    name: str | None = Field(default=None, max_length=200)
    sites: list[str] | None = Field(default=None, max_length=1000,
                                    description="bind every space of these sites")
    spaces: list[str] | None = Field(default=None, max_length=100_000,
                                     description="and these `site/space`s")


class GatewayIn(GatewayPatch):
    id: str = Field(pattern=SLUG)


class DevicePatch(Body):
    NOT_NULL = frozenset({"kind"})
    kind: Literal["sensor", "camera", "lorawan"] | None = None
    dev_eui: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{16}$")
    gateway: str | None = Field(default=None, pattern=SLUG)
    spaces: list[str] | dict[str, list[list[float]]] | None = Field(
        default=None, description="space ids, or for a camera space id → image polygon")
    model: str | None = Field(default=None, max_length=64,
                              description="a lorawan device's decoder (`parkbazaar lorawan models`)")
    occupied_path: str | None = Field(
        default=None, max_length=600,
        description="or where ChirpStack's own decoder puts occupancy, e.g. `object.occupied`")


class DeviceIn(DevicePatch):
    id: str = Field(pattern=SLUG)
    kind: Literal["sensor", "camera", "lorawan"]


class Credentials(BaseModel):
    """A gateway's MQTT login. The secret is shown this once; only its hash is stored."""

    gateway: str
    username: str
    secret: str
