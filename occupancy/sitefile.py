"""The site file: a tenant's sites, zones, spaces, gateways and devices (YAML).

``parkbazaar provision FILE`` loads it into the database; the simulators and
the camera layouts read it too. ``parse_site_file`` validates parsed YAML
(pure); ``read_site_file`` is the one place a site file is read from disk
(the one function of this module that does I/O), raising ``SiteFileError``
with a line ``FILE: key.path: message`` per problem, naming the value (a YAML
syntax error: ``FILE: cannot read site file: line L, column C: problem``).
Ids must be unique where the database keys them: sites and gateways within
the file, zones, devices and spaces within their site; a repeat is refused at
its own key, naming the value and where it first appeared. Every key is
described in docs/site-file.md.

Shape::

    tenant:
      id: shiraz
      name: Shiraz
      name_fa: شیراز
      timezone: Asia/Tehran
      holidays:                              # local dates the forecaster treats as rest days
        - 2026-03-20                         # a date alone (YYYY-MM-DD, quoted or not)
        - {date: 2026-03-21, name: Nowruz, name_fa: نوروز}
    sites:
      - id: central-lot
        kind: parking            # or market
        name: Central Municipal Parking
        name_fa: پارکینگ مرکزی
        lat: 29.61
        lon: 52.54
        opening_hours: {open: "06:00", close: "23:00"}
        stale_after_s: 900
        zones:
          - id: A
            name: Level A
            spaces: {prefix: A-, count: 40}   # A-001 … A-040
          - id: B
            spaces: [B-01, B-02]             # or an explicit list
            attributes: {B-01: {disabled: true}}
        devices:
          - {id: cam-1, kind: camera, spaces: {A-001: [[0, 0], [10, 0], [10, 10], [0, 10]]}}
          - id: bay-b01                      # a LoRaWAN bay sensor (ChirpStack)
            kind: lorawan
            dev_eui: 70B3D57ED0001234        # 16 hex digits, unique in the file (any case)
            spaces: [B-01]                   # exactly one space, of this site or site/space
            model: bosch-tpl110              # a built-in decoder (`parkbazaar lorawan models`)
          - {id: bay-b02, kind: lorawan, dev_eui: 70B3D57ED0001235, spaces: [B-02],
             occupied_path: object.occupied} # or where ChirpStack's own decoder puts it
    gateways:
      - id: gw-central-lot
        sites: [central-lot]                 # every space of these sites
        spaces: [other-site/X-1]             # and/or single spaces

A ``lorawan`` device has a ``dev_eui``, watches exactly one space (no other
lorawan device of the file watches it), and names how its uplinks are read:
exactly one of ``model`` (a known decoder) or ``occupied_path`` (a dotted path
starting ``object.`` into the network server's decoded ``object``). Only lorawan
devices have either. ``device_problems`` holds these rules for one device; the
admin API applies the same function to the device row a request would leave.

The tenant's ``holidays`` are the official holidays and Nowruz of the
municipality, as local calendar dates (``YYYY-MM-DD``, Gregorian, ASCII digits,
years ``HOLIDAY_YEARS``), each at most once, at most ``MAX_HOLIDAYS`` of them.
Provisioning stores them (the file is the truth: a date it no longer lists is
removed) and ingest's forecaster treats them as rest days (docs/forecast.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from occupancy import OccupancyError
from occupancy.config import describe_validation_error
from occupancy.ids import GatewayId, IdError, SiteId, SpaceId, SpaceRef, TenantId
from occupancy.lorawan import UnknownModel
from occupancy.lorawan import models as lorawan_models

# ``object.occupied``, ``object.status.parked``: where ChirpStack's own decoder puts occupancy.
OCCUPIED_PATH = re.compile(r"^object(\.[A-Za-z0-9_-]{1,64}){1,8}$")

Loc = tuple[str | int, ...]
# One problem: (key path, message naming the value, the value).
Problem = tuple[Loc, str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _repeats(keyed: Iterable[tuple[Loc, str]], what: str) -> list[Problem]:
    """A problem at every repeat of a value, naming it and the key it first appeared at."""
    first: dict[str, Loc] = {}
    found: list[Problem] = []
    for loc, value in keyed:
        if value in first:
            where = ".".join(str(p) for p in first[value])
            found.append((loc, f"duplicate {what} {value!r} (first at {where})", value))
        else:
            first[value] = loc
    return found


class SpaceRange(_Strict):
    prefix: str = ""
    count: int = Field(ge=1, le=10_000)
    start: int = Field(default=1, ge=0)
    width: int = Field(default=3, ge=1, le=6)

    def ids(self) -> list[str]:
        return [f"{self.prefix}{n:0{self.width}d}" for n in range(self.start, self.start + self.count)]


class Zone(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    name: str | None = None
    name_fa: str | None = None
    spaces: SpaceRange | list[str]
    attributes: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def space_ids(self) -> list[SpaceId]:
        raw = self.spaces.ids() if isinstance(self.spaces, SpaceRange) else self.spaces
        return [SpaceId(s) for s in raw]

    @model_validator(mode="after")
    def _attributes_name_spaces(self) -> Zone:
        known = set(self.space_ids())
        refuse("Zone", [(("attributes", name), f"no space {name!r} in zone {self.id}", name)
                        for name in self.attributes if name not in known])
        return self

    def keyed_spaces(self) -> list[tuple[Loc, str]]:
        """Each space id with the key that makes it (a range makes all at ``spaces``)."""
        if isinstance(self.spaces, SpaceRange):
            return [(("spaces",), s) for s in self.spaces.ids()]
        return [(("spaces", i), s) for i, s in enumerate(self.spaces)]


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Hours(_Strict):
    """Opening hours: local ``HH:MM`` (ASCII digits, a real time of day; ``close`` may be
    ``24:00``, and before ``open`` means the next day) and the weekdays closed."""

    open: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    close: str = Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")
    closed_days: list[str] = Field(default_factory=list, max_length=7)

    @field_validator("closed_days")
    @classmethod
    def _weekdays(cls, v: list[str]) -> list[str]:
        unknown = [d for d in v if d.lower() not in WEEKDAYS]
        if unknown:
            raise ValueError(f"closed_days must be weekday names ({', '.join(WEEKDAYS)}), got {unknown}")
        return v


class Device(_Strict):
    id: str
    kind: Literal["sensor", "camera", "lorawan"]
    dev_eui: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{16}$")
    model: str | None = Field(default=None, description="a LoRaWAN device model (occupancy.lorawan)")
    occupied_path: str | None = Field(
        default=None, description="where the network server's own decoder puts occupancy, "
                                  "e.g. object.occupied (instead of a built-in model)")
    spaces: list[str] | dict[str, list[list[float]]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _lorawan_keys(self) -> Device:
        refuse("Device", device_problems(self.kind, self.dev_eui, self.model, self.occupied_path,
                                         self.spaces))
        return self


def device_problems(kind: str, dev_eui: str | None, model: str | None, occupied_path: str | None,
                    spaces: Sequence[str] | Mapping[str, Any]) -> list[Problem]:
    """What a device's LoRaWAN keys break (pure): a lorawan device needs a DevEUI, exactly
    one space, and exactly one of a known ``model`` or an ``occupied_path``; no other kind
    may have either of those two."""
    if kind != "lorawan":
        return [((key,), f"{key} is for lorawan devices only, not a {kind} ({value!r})", value)
                for key, value in (("model", model), ("occupied_path", occupied_path)) if value is not None]
    out: list[Problem] = []
    if dev_eui is None:
        out.append((("dev_eui",), "a lorawan device needs its dev_eui (16 hex digits)", None))
    if isinstance(spaces, Mapping) or len(spaces) != 1:
        shown = list(spaces) if isinstance(spaces, Mapping) else spaces
        out.append((("spaces",), f"a lorawan device watches exactly one space (a list of one "
                                 f"space id), got {shown!r}", shown))
    return out + _reading_problems(model, occupied_path)


def _reading_problems(model: str | None, occupied_path: str | None) -> list[Problem]:
    """How a lorawan device's frames are read: a known model xor a field path."""
    if model is not None and occupied_path is not None:
        return [(("occupied_path",), f"give a model or an occupied_path, not both (model {model!r}, "
                                     f"occupied_path {occupied_path!r})", occupied_path)]
    if model is not None:
        problem = model_problem(model)
        return [(("model",), problem, model)] if problem else []
    if occupied_path is not None:
        return [] if OCCUPIED_PATH.match(occupied_path) else [(
            ("occupied_path",), f"occupied_path {occupied_path!r} is not a dotted path into the "
                                "decoded object, such as 'object.occupied'", occupied_path)]
    known = ", ".join(lorawan_models.names()) or "none"
    return [(("model",), f"a lorawan device needs a model (known: {known}) or an occupied_path "
                         "such as 'object.occupied'", None)]


def model_problem(name: str) -> str | None:
    """Why ``name`` is not a usable device model (the message lists the known ones), or None."""
    try:
        lorawan_models.model(name)
    except UnknownModel as exc:
        return str(exc)
    return None


def refuse(title: str, problems: Sequence[Problem]) -> None:
    """Raise one ``ValidationError`` holding every problem at its own key path (relative to
    the model validating, so pydantic prefixes the path of an enclosing file), if any."""
    if problems:
        raise ValidationError.from_exception_data(title, [
            InitErrorDetails(type=PydanticCustomError("site_file", "{reason}", {"reason": msg}),
                             loc=loc, input=value)
            for loc, msg, value in problems])


class Site(_Strict):
    id: str
    kind: Literal["parking", "market"]
    name: str
    name_fa: str | None = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = None
    opening_hours: Hours | None = None
    stale_after_s: int = Field(default=900, ge=10)
    zones: list[Zone] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _site_id(cls, v: str) -> str:
        return SiteId(v)

    @model_validator(mode="after")
    def _unique_ids(self) -> Site:
        spaces = [(("zones", i, *loc), s) for i, z in enumerate(self.zones) for loc, s in z.keyed_spaces()]
        refuse("Site", _repeats(((("zones", i, "id"), z.id) for i, z in enumerate(self.zones)), "zone id")
               + _repeats(((("devices", i, "id"), d.id) for i, d in enumerate(self.devices)), "device id")
               + _repeats(spaces, f"space id in site {self.id}"))
        return self

    def spaces(self) -> list[tuple[str, SpaceId]]:
        """(zone id, space id) for every space of the site."""
        return [(z.id, s) for z in self.zones for s in z.space_ids()]


class Gateway(_Strict):
    id: str
    name: str | None = None
    sites: list[str] = Field(default_factory=list)
    spaces: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _gateway_id(cls, v: str) -> str:
        return GatewayId(v)


HOLIDAY_YEARS = (2000, 2100)
MAX_HOLIDAYS = 1000
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")  # ASCII digits: \d would take "۱۴۰۵" too


class Holiday(_Strict):
    """A local date the tenant's sites keep as a holiday, with an optional name."""

    date: dt.date
    name: str | None = Field(default=None, max_length=100)
    name_fa: str | None = Field(default=None, max_length=100)

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, v: Any) -> dt.date:
        return holiday_date(v)


def holiday_date(v: Any) -> dt.date:
    """A holiday's date from YAML: a date (YAML reads an unquoted 2026-03-20 as one) or a
    ``YYYY-MM-DD`` string; ``ValueError`` naming the value otherwise (pure)."""
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        d = v
    elif isinstance(v, str) and _ISO_DATE.match(v):
        try:
            d = dt.date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"holiday {v!r} is not a real date") from None
    else:
        raise ValueError(f"a holiday is a local date YYYY-MM-DD, got {v!r}")
    if not HOLIDAY_YEARS[0] <= d.year <= HOLIDAY_YEARS[1]:
        first, last = HOLIDAY_YEARS
        raise ValueError(f"holiday {d.isoformat()} is outside the years {first}-{last}")
    return d


class Tenant(_Strict):
    id: str
    name: str
    name_fa: str | None = None
    timezone: str = "Asia/Tehran"
    holidays: list[Holiday] = Field(default_factory=list, max_length=MAX_HOLIDAYS)

    @field_validator("id")
    @classmethod
    def _tenant_id(cls, v: str) -> str:
        return TenantId(v)

    @field_validator("holidays", mode="before")
    @classmethod
    def _dates_alone(cls, v: Any) -> Any:
        """A bare date stands for ``{date: …}`` (anything but a mapping is read as a date)."""
        if isinstance(v, list):
            return [h if isinstance(h, (Mapping, Holiday)) else {"date": h} for h in v]
        return v

    @model_validator(mode="after")
    def _each_date_once(self) -> Tenant:
        refuse("Tenant", _repeats(((("holidays", i, "date"), h.date.isoformat())
                                   for i, h in enumerate(self.holidays)), "holiday"))
        return self


class SiteFile(_Strict):
    tenant: Tenant
    sites: list[Site]
    gateways: list[Gateway] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> SiteFile:
        refuse("SiteFile", _repeats(((("sites", i, "id"), s.id) for i, s in enumerate(self.sites)),
                                    "site id")
               + _repeats(((("gateways", i, "id"), g.id) for i, g in enumerate(self.gateways)),
                          "gateway id"))
        return self

    @model_validator(mode="after")
    def _bindings_exist(self) -> SiteFile:
        known = {s.id: {sp for _, sp in s.spaces()} for s in self.sites}
        problems: list[Problem] = []
        for i, gw in enumerate(self.gateways):
            problems += [(("gateways", i, "sites", j), f"unknown site {site!r}", site)
                         for j, site in enumerate(gw.sites) if site not in known]
            for j, ref in enumerate(gw.spaces):
                try:
                    r = SpaceRef.parse(ref)
                except ValueError as exc:
                    problems.append((("gateways", i, "spaces", j), f"{exc}", ref))
                    continue
                if r.space not in known.get(r.site, set()):
                    problems.append((("gateways", i, "spaces", j), f"unknown space {ref!r}", ref))
        refuse("SiteFile", problems + lorawan_file_problems(self.sites, known))
        return self

    def site(self, site_id: str) -> Site:
        for s in self.sites:
            if s.id == site_id:
                return s
        raise KeyError(site_id)

    def bound_spaces(self, gateway_id: str) -> list[SpaceRef]:
        """Every space the gateway may report, in site-file order."""
        gw = next(g for g in self.gateways if g.id == gateway_id)
        refs = [SpaceRef(SiteId(s), sp) for s in gw.sites for _, sp in self.site(s).spaces()]
        refs += [SpaceRef.parse(r) for r in gw.spaces if SpaceRef.parse(r) not in refs]
        return refs


def lorawan_file_problems(sites: Sequence[Site], known: Mapping[str, set[SpaceId]]) -> list[Problem]:
    """What the file's lorawan devices break together (pure): each DevEUI once in the file
    (in any case), each device's space one of the file's, each space watched by one device."""
    out: list[Problem] = []
    euis: dict[str, str] = {}
    watchers: dict[SpaceRef, str] = {}
    for i, site in enumerate(sites):
        for j, d in enumerate(site.devices):
            at = ("sites", i, "devices", j)
            if d.dev_eui is not None:
                first = euis.setdefault(d.dev_eui.lower(), f"{site.id}/{d.id}")
                if first != f"{site.id}/{d.id}":
                    out.append(((*at, "dev_eui"), f"DevEUI {d.dev_eui!r} is device {first}'s already "
                                                  "in this file", d.dev_eui))
            if d.kind == "lorawan":
                out += _space_problem(at, site, d, known, watchers)
    return out


def _space_problem(at: tuple[str | int, ...], site: Site, d: Device,
                   known: Mapping[str, set[SpaceId]], watchers: dict[SpaceRef, str]) -> list[Problem]:
    name = next(iter(d.spaces))
    try:
        ref = SpaceRef.parse(name) if "/" in name else SpaceRef(SiteId(site.id), SpaceId(name))
    except IdError as exc:
        return [((*at, "spaces", 0), f"{exc}", name)]
    if ref.space not in known.get(ref.site, set()):
        return [((*at, "spaces", 0), f"unknown space {name!r} (not a space of site {ref.site})", name)]
    first = watchers.setdefault(ref, f"{site.id}/{d.id}")
    if first != f"{site.id}/{d.id}":
        return [((*at, "spaces", 0), f"space {ref} is watched by lorawan device {first} already", name)]
    return []


def parse_site_file(data: Any) -> SiteFile:
    """Validate parsed YAML; raises ``pydantic.ValidationError`` naming the key."""
    return SiteFile.model_validate(data)


class SiteFileError(OccupancyError, ValueError):
    """A site file cannot be read or is not valid; one ``FILE: key.path: message`` line a problem."""


class _Loader(yaml.SafeLoader):
    """Safe YAML whose timestamps stay text: the site file's only dates are holidays, which
    validate themselves (an unquoted ``2026-13-01`` is then an error naming its key, not a
    crash of the YAML reader)."""


def _timestamp_as_text(loader: _Loader, node: yaml.Node) -> Any:
    return loader.construct_yaml_str(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def yaml_problem(exc: Exception) -> str:
    """A YAML error as ``line L, column C: problem`` (PyYAML's own text names ``<unicode string>``)."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return str(exc)
    mark = exc.problem_mark
    context = f" ({exc.context} at line {exc.context_mark.line + 1})" if (
        exc.context and exc.context_mark is not None) else ""
    return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}{context}"


def read_site_file(path: Path) -> SiteFile:
    """Read and validate the site file at ``path``; ``SiteFileError`` when it cannot be used."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SiteFileError(f"{path}: cannot read site file: {yaml_problem(exc)}") from exc
    try:
        return parse_site_file(data)
    except ValidationError as exc:
        raise SiteFileError(describe_validation_error(exc, str(path))) from exc
