"""Scenario files: what to simulate, when, how fast, with which faults (YAML, validated).

Shape (every key but ``site_file``/``province`` has a default)::

    name: shiraz-day
    site_file: ../shiraz.yaml          # relative to the scenario file
    sites: [central-lot, fruit-market] # default: every site of the file
    start: 2026-11-26T06:00            # local time of the tenant; default: span before now
    hours: 16                          # simulated span
    speed: 1440                        # simulated seconds per real second
    seed: 7
    tick_s: 60                         # simulated step
    heartbeat_s: 300                   # simulated; below every site's stale_after_s
    parking: {dwell_median_min: 90, disabled_share: 0.04, ev_share: 0.06}
    market: {absent_share: 0.12}
    faults:
      - {kind: flapping, site: central-lot, spaces: [A-010], at: "02:00", for: "00:20", period_s: 60}
      - {kind: silent, site: central-lot, spaces: [B-001, B-002], at: "03:00"}
      - {kind: uplink_loss, gateway: gw-central-lot, at: "04:00", for: "00:30"}
      - {kind: clock_skew, gateway: gw-fruit-market, at: "05:00", for: "00:20", offset_s: 3600}
      - {kind: duplicate_burst, gateway: gw-central-lot, at: "06:00", count: 200}
      - {kind: malformed, gateway: gw-central-lot, at: "06:30", count: 5}
    cameras:
      - {site: central-lot, zone: A, every_s: 120}           # rendered frames of zone A
      - {replay: ../../../shared/datasets/pklot-ufpr05/stream-2013-02-24,
         layout: ufpr05.xml, site: ufpr05}                    # real frames
    lorawan:                           # sensors of these spaces are LoRaWAN devices behind ChirpStack
      - {site: central-lot, zone: B, model: nwave-nps405, receivers: 3, duplicate_share: 0.3,
         late_share: 0.05, heartbeat_s: 3600, rejoin: ["10:00"]}
    checkpoints: ["04:00", "08:00"]    # per-space comparisons, offsets from start
    verify: {history_step_s: 600, camera_max_error: 0.15}

Instead of ``site_file`` a scenario may say ``province: {municipalities: 84,
lots: 2, markets: 1, bays: 120, stalls: 60, seed: 1}`` (see ``province.py``).
Times of faults, checkpoints and rejoins are offsets ``HH:MM`` from ``start``.

A ``lorawan`` entry (``LorawanSpec``) makes the sensors of some spaces of a
site (a ``zone``, a list of ``spaces``, or the whole site) LoRaWAN devices of
one ``model`` (``occupancy.lorawan.models``): they send ChirpStack v4 events
(``simulators/lorawan.py``) that the site's gateway receives through the
ChirpStack adapter. A space is in at most one entry and never camera-watched.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simulators import SimulationError

_OFFSET = re.compile(r"^(\d{1,3}):([0-5]\d)(?::([0-5]\d))?$")


def offset_s(text: str) -> int:
    """``"02:30"`` → 9000; ``"00:00:45"`` → 45."""
    match = _OFFSET.fullmatch(text)
    if match is None:
        raise ValueError(f"not an offset HH:MM[:SS]: {text!r}")
    hours, mins, secs = match.groups()
    return int(hours) * 3600 + int(mins) * 60 + int(secs or 0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Timed(_Strict):
    at: str
    for_: str = Field(default="00:00", alias="for")

    @field_validator("at", "for_")
    @classmethod
    def _offset(cls, v: str) -> str:
        offset_s(v)
        return v

    @property
    def start_s(self) -> int:
        return offset_s(self.at)

    @property
    def end_s(self) -> int:
        return self.start_s + offset_s(self.for_)


class SpaceFault(_Timed):
    """A fault of single sensors: ``flapping`` (toggles) or ``silent`` (dead battery, for good)."""

    kind: Literal["flapping", "silent"]
    site: str
    spaces: list[str] = Field(min_length=1)
    period_s: int = Field(default=60, ge=1, description="flapping: simulated seconds between toggles")


class GatewayFault(_Timed):
    """A fault of a gateway or its link."""

    kind: Literal["uplink_loss", "clock_skew", "duplicate_burst", "malformed"]
    gateway: str
    offset_s: int = Field(default=0, description="clock_skew: seconds ahead (+) or behind (-)")
    count: int = Field(default=50, ge=1, le=100_000,
                       description="duplicate_burst: events resent; malformed: payloads")


Fault = SpaceFault | GatewayFault


class CameraSpec(_Strict):
    """A rendered camera over a zone of a site, or a replayed folder of real frames."""

    site: str
    zone: str | None = None
    every_s: int = Field(default=120, ge=10)
    replay: Path | None = None
    layout: Path | None = None
    device: str | None = None
    confirm_frames: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _replay_needs_layout(self) -> CameraSpec:
        if self.replay is not None and self.layout is None:
            raise ValueError("a replayed camera needs a layout (PKLot XML or site file)")
        return self


class LorawanSpec(_Strict):
    """Spaces whose sensors are LoRaWAN devices of one model, heard through ChirpStack v4."""

    site: str
    zone: str | None = None
    spaces: list[str] | None = Field(default=None, min_length=1)
    model: str = Field(description="a device model of occupancy.lorawan (parkbazaar lorawan models)")
    receivers: int = Field(default=1, ge=1, le=8,
                           description="LoRaWAN gateways in range: each uplink is heard by 1..receivers")
    duplicate_share: float = Field(default=0.0, ge=0, le=1,
                                   description="uplinks published once per receiving gateway")
    late_share: float = Field(default=0.0, ge=0, le=1,
                              description="uplinks published only after the device's next one")
    heartbeat_s: int = Field(default=3600, ge=60, description="the device's own keep-alive period")
    stale_after_s: int | None = Field(
        default=None, ge=60, description="the gateway's staleness bound for these devices; "
                                         "default 2 × heartbeat_s + 600")
    rejoin: list[str] = Field(default_factory=list,
                              description="offsets at which every device of the entry rejoins")
    application_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="ChirpStack application id; default one derived from name and seed")

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from occupancy.lorawan.models import model

        model(v)  # UnknownModel (a ValueError) names the known ones
        return v

    @field_validator("rejoin")
    @classmethod
    def _offsets(cls, v: list[str]) -> list[str]:
        for text in v:
            offset_s(text)
        return v

    @model_validator(mode="after")
    def _where(self) -> LorawanSpec:
        if self.zone is not None and self.spaces is not None:
            raise ValueError("give a zone or spaces, not both")
        if self.stale_after_s is not None and self.stale_after_s <= self.heartbeat_s:
            raise ValueError("stale_after_s must be longer than heartbeat_s, or every space "
                             "goes unknown between two heartbeats")
        return self

    @property
    def stale_s(self) -> int:
        return self.stale_after_s or 2 * self.heartbeat_s + 600

    def rejoin_offsets(self) -> list[int]:
        return sorted(offset_s(r) for r in self.rejoin)


class ParkingSpec(_Strict):
    dwell_median_min: float = Field(default=90, gt=0)
    dwell_sigma: float = Field(default=0.7, gt=0)
    disabled_share: float = Field(default=0.04, ge=0, le=1)
    ev_share: float = Field(default=0.06, ge=0, le=1)
    weekend: list[str] = Field(default_factory=lambda: ["friday"])


class MarketSpec(_Strict):
    absent_share: float = Field(default=0.12, ge=0, le=1)
    arrive_before_open_min: float = Field(default=30)


class ProvinceSpec(_Strict):
    municipalities: int = Field(default=84, ge=1, le=1000)
    lots: int = Field(default=2, ge=0, le=50)
    markets: int = Field(default=1, ge=0, le=50)
    bays: int = Field(default=120, ge=1, le=5000)
    stalls: int = Field(default=60, ge=1, le=5000)
    seed: int = 1


class VerifySpec(_Strict):
    history_step_s: int = Field(default=600, ge=60)
    settle_s: float = Field(default=20.0, ge=0, description="real seconds to wait for delivery")
    camera_max_error: float = Field(default=0.15, ge=0, le=1,
                                    description="share of camera-watched spaces allowed wrong")


class Scenario(_Strict):
    name: str = "scenario"
    site_file: Path | None = None
    province: ProvinceSpec | None = None
    sites: list[str] | None = None
    start: datetime | None = None
    hours: float = Field(default=24, gt=0, le=24 * 14)
    speed: float = Field(default=1440, gt=0)
    seed: int = 1
    tick_s: int = Field(default=60, ge=1)
    heartbeat_s: int = Field(default=300, ge=10)
    parking: ParkingSpec = ParkingSpec()
    market: MarketSpec = MarketSpec()
    faults: list[Fault] = Field(default_factory=list)
    cameras: list[CameraSpec] = Field(default_factory=list)
    lorawan: list[LorawanSpec] = Field(default_factory=list)
    checkpoints: list[str] = Field(default_factory=list)
    verify: VerifySpec = VerifySpec()

    @model_validator(mode="after")
    def _one_source_of_sites(self) -> Scenario:
        if (self.site_file is None) == (self.province is None):
            raise ValueError("give exactly one of site_file and province")
        for c in self.checkpoints:
            offset_s(c)
        return self

    @property
    def span(self) -> timedelta:
        return timedelta(hours=self.hours)

    def checkpoint_offsets(self) -> list[int]:
        return sorted(offset_s(c) for c in self.checkpoints)


def parse_scenario(data: Any, base: Path | None = None) -> Scenario:
    """Validate parsed YAML; relative paths are resolved against ``base``."""
    scenario = Scenario.model_validate(data)
    if base is None:
        return scenario
    cameras = [c.model_copy(update={"replay": _under(base, c.replay), "layout": _under(base, c.layout)})
               for c in scenario.cameras]
    return scenario.model_copy(update={"site_file": _under(base, scenario.site_file),
                                       "cameras": cameras})


def _under(base: Path, path: Path | None) -> Path | None:
    return None if path is None or path.is_absolute() else (base / path).resolve()


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; ``SimulationError`` names the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return parse_scenario(data, path.resolve().parent)
    except (OSError, yaml.YAMLError) as exc:
        raise SimulationError(f"scenario {path}: {exc}") from exc
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SimulationError(f"scenario {path}: " + "; ".join(lines)) from exc
