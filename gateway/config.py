"""The gateway config file (YAML): who the gateway is, where it publishes, what it reads.

``load_gateway_config(path)`` reads and validates it; every problem becomes
one line ``FILE: key.path: message`` of a ``GatewayConfigError``. Relative
paths in the file (state dir, TLS files, password file, camera layout) are
relative to the file's folder, so a config and its secrets can move
together. See ``examples/gateway-central-lot.yaml`` and ``docs/gateway.md``.

Shape (abridged)::

    tenant: shiraz
    gateway: gw-central-lot
    broker: {url: mqtts://broker:8883, username: shiraz/gw-central-lot, password_file: gw.secret,
             tls: {ca: ca.pem, cert: gw.pem, key: gw.key}}
    spaces: [{site: central-lot, prefix: A-, count: 48}]     # what the gateway is bound to
    heartbeat_s: 300            # restate every space
    stale_after_s: 120          # silent device → its spaces unknown
    outbox: {max_events: 1000000}
    devices:
      - {id: bus-a, kind: modbus, host: 10.0.0.5, table: coils,
         bays: [{site: central-lot, prefix: A-, count: 48, address: 0}]}
      - {id: sim-1, kind: simulated, spaces: [central-lot/B-001]}
      - {id: cam-2, kind: camera, source: rtsp://…, layout: cam-2.xml, site: central-lot}
      - id: chirpstack                      # LoRaWAN sensors through ChirpStack v4
        kind: chirpstack
        broker: {url: mqtts://chirpstack.local:8883, username: parkbazaar, password_file: cs.secret}
        application_id: 0f3c…               # one or a list
        sensors:
          - {dev_eui: 70B3D5E75E000001, model: nwave-nps405, space: central-lot/B-001}
          - {dev_eui: 70B3D5E75E000002, occupied_path: object.occupied, space: central-lot/B-002}
        sensors_file: sensors.json          # and/or the admin API's bindings, saved (docs/gateway.md)
        site_file: ../shiraz.yaml           # and the site file's lorawan devices of our spaces

A ``chirpstack`` entry is a connection to the network server's broker, not a
sensor: each of its sensors is a device of its own (id: its ``id`` or its
DevEUI in lowercase) with a state machine of its own. Errors about a sensor
taken from the site file name the site file's key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway import GatewayError
from gateway.devices import CAMERA_CONFIRM_READINGS
from occupancy.backoff import Backoff
from occupancy.config import MqttUrl, got_value
from occupancy.ids import DeviceId, GatewayId, IdError, SiteId, SpaceId, SpaceRef, TenantId
from occupancy.lorawan import UnknownModel
from occupancy.lorawan.models import model as lorawan_model
from occupancy.mqtt_client import TlsOptions
from occupancy.sitefile import SiteFile, SiteFileError, read_site_file
from occupancy.statemachine import Policy
from occupancy.topics import ROOT


class GatewayConfigError(GatewayError):
    """The gateway config file is unreadable or wrong; one ``FILE: key: message`` a line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpaceBlock(_Strict):
    """``count`` consecutive spaces of one site: ``{site, prefix, start, count, width}``."""

    site: str
    prefix: str = ""
    start: int = Field(default=1, ge=0)
    count: int = Field(ge=1, le=10_000)
    width: int = Field(default=3, ge=1, le=6)

    def refs(self) -> list[SpaceRef]:
        return [SpaceRef(SiteId(self.site), SpaceId(f"{self.prefix}{n:0{self.width}d}"))
                for n in range(self.start, self.start + self.count)]


SpaceItem = str | SpaceBlock


def expand(items: list[SpaceItem]) -> list[SpaceRef]:
    """``site/space`` strings and blocks, in order, as space references."""
    out: list[SpaceRef] = []
    for item in items:
        out += [SpaceRef.parse(item)] if isinstance(item, str) else item.refs()
    return out


def _check_refs(items: list[SpaceItem]) -> list[SpaceItem]:
    try:
        refs = expand(items)
    except IdError as exc:
        raise ValueError(str(exc)) from exc
    if len(set(refs)) != len(refs):
        raise ValueError("a space is listed twice")
    return items


class TlsSection(_Strict):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TlsSection:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together (mutual TLS)")
        return self


class BrokerSection(_Strict):
    url: str
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    client_id: str | None = Field(default=None, min_length=1, max_length=64)
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)
    tls: TlsSection | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        MqttUrl.parse(v)
        return v

    @model_validator(mode="after")
    def _secrets(self) -> BrokerSection:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("reconnect_initial_s must not exceed reconnect_max_s")
        return self


class DebounceSection(_Strict):
    enter: float = Field(default=0.6, ge=0, le=1)
    leave: float = Field(default=0.4, ge=0, le=1)
    confirm_readings: int = Field(default=1, ge=1, le=1000)
    debounce_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _band(self) -> DebounceSection:
        if self.leave > self.enter:
            raise ValueError("leave must not exceed enter")
        return self


# A camera without its own ``debounce``: three frames confirm a change (the
# gateway-wide section is tuned for bay sensors, whose readings do not flicker).
CAMERA_DEBOUNCE = DebounceSection(confirm_readings=CAMERA_CONFIRM_READINGS)


class OutboxSection(_Strict):
    max_events: int = Field(default=1_000_000, ge=10)


class _Device(_Strict):
    id: str
    poll_s: float = Field(default=1.0, gt=0, le=3600)
    stale_after_s: float | None = Field(default=None, gt=0)
    debounce: DebounceSection | None = None

    @field_validator("id")
    @classmethod
    def _device_id(cls, v: str) -> str:
        return DeviceId(v)


class BayBlock(SpaceBlock):
    """A block of bays read from consecutive addresses starting at ``address``."""

    address: int = Field(ge=0, le=65535)


class ModbusDevice(_Device):
    """Bay sensors on a Modbus TCP bus: one coil or register per bay, polled."""

    kind: Literal["modbus"]
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=255)
    table: Literal["coils", "discrete_inputs", "holding_registers", "input_registers"] = "coils"
    timeout_s: float = Field(default=1.0, gt=0, le=60)
    invert: bool = False
    bays: list[BayBlock | dict[str, int]] = Field(min_length=1)

    def address_map(self) -> dict[SpaceRef, int]:
        """Every bay and its address."""
        out: dict[SpaceRef, int] = {}
        for item in self.bays:
            if isinstance(item, BayBlock):
                out.update({r: item.address + i for i, r in enumerate(item.refs())})
            else:
                out.update({SpaceRef.parse(k): v for k, v in item.items()})
        return out

    @model_validator(mode="after")
    def _addresses(self) -> ModbusDevice:
        try:
            addresses = self.address_map()
        except IdError as exc:
            raise ValueError(str(exc)) from exc
        n = sum(len(b.refs()) if isinstance(b, BayBlock) else len(b) for b in self.bays)
        if len(addresses) != n:
            raise ValueError("a bay is listed twice")
        if len(set(addresses.values())) != len(addresses):
            raise ValueError("two bays share an address")
        if any(not 0 <= a <= 65535 for a in addresses.values()):
            raise ValueError("addresses are 0..65535")
        return self

    def space_refs(self) -> list[SpaceRef]:
        return list(self.address_map())


class SimulatedDevice(_Device):
    """Sensors that flip at random (seeded): the gateway without hardware."""

    kind: Literal["simulated"]
    spaces: list[SpaceItem] = Field(min_length=1)
    change_probability: float = Field(default=0.05, ge=0, le=1)
    seed: int = 1
    battery: float | None = Field(default=100.0, ge=0, le=100)

    @field_validator("spaces")
    @classmethod
    def _spaces(cls, v: list[SpaceItem]) -> list[SpaceItem]:
        return _check_refs(v)

    def space_refs(self) -> list[SpaceRef]:
        return expand(self.spaces)


class CameraDevice(_Device):
    """A camera and its layout (polygons of space ids of ``site``); see docs/vision.md."""

    kind: Literal["camera"]
    source: str
    layout: Path
    site: str
    live: bool = True
    every: int = Field(default=1, ge=1)
    model: Path | None = None
    threshold: float | None = Field(default=None, ge=0, le=1, description="plain split, no unknown band")
    unknown_band: tuple[float, float] | None = Field(
        default=None, description="[free below, occupied from]; unknown between (default: the model's)"
    )
    adapt: bool = Field(default=True, description="learn per-space calibration from the stream")
    poll_s: float = Field(default=0.0, ge=0, le=3600)
    layout_spaces: list[str] = Field(default_factory=list, description="filled from the layout")

    @model_validator(mode="after")
    def _operating_point(self) -> CameraDevice:
        if self.threshold is not None and self.unknown_band is not None:
            raise ValueError("give threshold or unknown_band, not both")
        if self.unknown_band is not None and not 0.0 <= self.unknown_band[0] <= self.unknown_band[1] <= 1.0:
            raise ValueError("unknown_band wants [lo, hi] with 0 <= lo <= hi <= 1")
        return self

    def space_refs(self) -> list[SpaceRef]:
        return [SpaceRef(SiteId(self.site), SpaceId(s)) for s in self.layout_spaces]


class SensorBinding(_Strict):
    """A LoRaWAN sensor of a ChirpStack connection: DevEUI → space, and how to read occupancy."""

    dev_eui: str = Field(pattern=r"^[0-9a-fA-F]{16}$")
    id: str | None = None
    model: str | None = None
    occupied_path: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
    space: str

    @field_validator("dev_eui")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()

    @field_validator("id")
    @classmethod
    def _sensor_id(cls, v: str | None) -> str | None:
        return None if v is None else DeviceId(v)

    @field_validator("space")
    @classmethod
    def _space(cls, v: str) -> str:
        try:
            SpaceRef.parse(v)
        except IdError as exc:
            raise ValueError(str(exc)) from exc
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                lorawan_model(v)
            except UnknownModel as exc:
                raise ValueError(str(exc)) from exc
        return v

    @model_validator(mode="after")
    def _one_way(self) -> SensorBinding:
        if (self.model is None) == (self.occupied_path is None):
            raise ValueError("give exactly one of model (a built-in decoder) and occupied_path "
                             "(where the device profile's codec puts occupancy, e.g. object.occupied)")
        return self

    @property
    def device_id(self) -> str:
        return self.id or self.dev_eui

    def ref(self) -> SpaceRef:
        return SpaceRef.parse(self.space)


# LoRaWAN parking sensors send on change and a heartbeat every few hours (often 4 to 24):
# a day and a bit of silence, not two minutes, makes their bays unknown.
LORAWAN_STALE_AFTER_S = 90_000.0


class ChirpstackDevice(_Device):
    """A connection to a ChirpStack v4 MQTT integration and the LoRaWAN sensors read through it."""

    kind: Literal["chirpstack"]
    broker: BrokerSection
    application_id: str | list[str]
    topic_prefix: str = Field(default="application", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    stale_after_s: float | None = Field(default=LORAWAN_STALE_AFTER_S, gt=0)
    session_expiry_s: int = Field(default=86_400, ge=0, le=30 * 86_400)
    sensors: list[SensorBinding] = Field(default_factory=list)
    sensors_file: Path | None = None
    file_sensors: list[SensorBinding] = Field(default_factory=list, description="filled from sensors_file")
    site_file: Path | None = None
    site_sensors: list[SensorBinding] = Field(default_factory=list, description="filled from site_file")

    @field_validator("application_id")
    @classmethod
    def _applications(cls, v: str | list[str]) -> str | list[str]:
        ids = [v] if isinstance(v, str) else v
        if not ids or any(not a or any(c in a for c in "/+#") for a in ids):
            raise ValueError("want one or more application ids (no '/', '+' or '#')")
        return v

    @model_validator(mode="after")
    def _unique_sensors(self) -> ChirpstackDevice:
        euis = [s.dev_eui for s in self.sensors]
        if len(set(euis)) != len(euis):
            raise ValueError("a dev_eui is listed twice")
        ids = [s.device_id for s in self.all_sensors()]
        if len(set(ids)) != len(ids):
            raise ValueError("two sensors share an id")
        owner: dict[SpaceRef, str] = {}
        for s in self.all_sensors():
            if s.ref() in owner:
                raise ValueError(f"space {s.ref()} is bound to sensors {owner[s.ref()]} and {s.device_id}")
            owner[s.ref()] = s.device_id
        return self

    def application_ids(self) -> list[str]:
        return [self.application_id] if isinstance(self.application_id, str) else list(self.application_id)

    def all_sensors(self) -> list[SensorBinding]:
        """The config's sensors, then the sensors file's, then the site file's (a DevEUI in
        several: the first one wins)."""
        out: list[SensorBinding] = []
        seen: set[str] = set()
        for s in self.sensors + self.file_sensors + self.site_sensors:
            if s.dev_eui not in seen:
                seen.add(s.dev_eui)
                out.append(s)
        return out

    def space_refs(self) -> list[SpaceRef]:
        return [s.ref() for s in self.all_sensors()]


AnyDevice = ModbusDevice | SimulatedDevice | CameraDevice | ChirpstackDevice
Device = Annotated[AnyDevice, Field(discriminator="kind")]


class GatewayConfig(_Strict):
    """The whole file; ``base_dir`` (the file's folder) resolves relative paths."""

    tenant: str
    gateway: str
    broker: BrokerSection
    topic_prefix: str = Field(default=ROOT, pattern=r"^[A-Za-z0-9_/-]+[A-Za-z0-9_-]$")
    state_dir: Path = Path("state")
    spaces: list[SpaceItem] | None = None
    heartbeat_s: float = Field(default=300.0, gt=0)
    health_s: float = Field(default=60.0, gt=0)
    stale_after_s: float = Field(default=120.0, gt=0)
    tick_s: float = Field(default=1.0, gt=0, le=60)
    debounce: DebounceSection = Field(default_factory=DebounceSection)
    outbox: OutboxSection = Field(default_factory=OutboxSection)
    devices: list[Device] = Field(min_length=1)
    log_level: str = "INFO"
    _base_dir: Path = PrivateAttr(default=Path("."))

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, v: str) -> str:
        return TenantId(v)

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, v: str) -> str:
        return GatewayId(v)

    @field_validator("spaces")
    @classmethod
    def _spaces(cls, v: list[SpaceItem] | None) -> list[SpaceItem] | None:
        return None if v is None else _check_refs(v)

    @model_validator(mode="after")
    def _bindings(self) -> GatewayConfig:
        ids = [d.id for d in self.devices] + [
            s.device_id for d in self.devices if isinstance(d, ChirpstackDevice) for s in d.all_sensors()]
        if len(set(ids)) != len(ids):
            raise ValueError("two devices share an id (a LoRaWAN sensor's id is its DevEUI)")
        euis = [s.dev_eui for d in self.devices if isinstance(d, ChirpstackDevice)
                for s in d.all_sensors()]
        if len(set(euis)) != len(euis):
            raise ValueError("a dev_eui is bound by two chirpstack connections")
        owner: dict[SpaceRef, str] = {}
        bound = None if self.spaces is None else set(expand(self.spaces))
        for d in self.devices:
            for ref in d.space_refs():
                if ref in owner:
                    raise ValueError(f"space {ref} is bound to devices {owner[ref]} and {d.id}")
                if bound is not None and ref not in bound:
                    raise ValueError(f"device {d.id}: space {ref} is not in the gateway's spaces")
                owner[ref] = d.id
        return self

    # ---- derived values ---------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def path(self, p: Path) -> Path:
        """A path of the file, resolved against the file's folder."""
        return p if p.is_absolute() else self._base_dir / p

    def outbox_path(self) -> Path:
        return self.path(self.state_dir) / f"{self.gateway}.sqlite"

    def bound_spaces(self) -> list[SpaceRef]:
        if self.spaces is not None:
            return expand(self.spaces)
        return [r for d in self.devices for r in d.space_refs()]

    def policy(self, device: AnyDevice) -> Policy:
        """The device's state-machine policy; a camera debounces over frames by default."""
        d = device.debounce or (CAMERA_DEBOUNCE if device.kind == "camera" else self.debounce)
        return Policy(enter=d.enter, leave=d.leave, confirm_readings=d.confirm_readings,
                      debounce_s=d.debounce_s,
                      stale_after_s=device.stale_after_s or self.stale_after_s,
                      heartbeat_s=self.heartbeat_s)

    def mqtt(self, broker: BrokerSection | None = None) -> MqttUrl:
        """The broker URL with the credentials of the file (they win over the URL's);
        ``broker``: another broker section of the file (a ChirpStack connection's)."""
        b = broker or self.broker
        url = MqttUrl.parse(b.url)
        username = b.username or url.username
        password = b.password or url.password
        if b.password_file is not None:
            password = self.path(b.password_file).read_text(encoding="utf-8").strip()
        return dataclasses.replace(url, username=username, password=password)

    def tls(self, broker: BrokerSection | None = None) -> TlsOptions | None:
        t = (broker or self.broker).tls
        if t is None:
            return None
        return TlsOptions(
            ca_file=None if t.ca is None else self.path(t.ca),
            cert_file=None if t.cert is None else self.path(t.cert),
            key_file=None if t.key is None else self.path(t.key), insecure=t.insecure)

    def backoff(self, broker: BrokerSection | None = None) -> Backoff:
        b = broker or self.broker
        return Backoff(initial_s=b.reconnect_initial_s, max_s=b.reconnect_max_s)

    def client_id(self) -> str:
        return self.broker.client_id or f"parkbazaar-gw-{self.tenant}-{self.gateway}"


def parse_gateway_config(data: Any, base_dir: Path, origin: str = "config") -> GatewayConfig:
    """Validate parsed YAML; ``base_dir`` resolves relative paths. Raises GatewayConfigError."""
    if not isinstance(data, dict):
        raise GatewayConfigError(f"{origin}: the gateway config must be a mapping of keys")
    data = _with_sensor_files(_with_layouts(data, base_dir, origin), base_dir, origin)
    config = _validate(data, origin, {})
    config._base_dir = base_dir
    if any(isinstance(d, ChirpstackDevice) and d.site_file for d in config.devices):
        data, where = _with_site_sensors(config, data, origin)
        config = _validate(data, origin, where)
        config._base_dir = base_dir
    _check_files(config, origin)
    return config


def _validate(data: dict[str, Any], origin: str, where: dict[tuple[int, int], str]) -> GatewayConfig:
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise GatewayConfigError(_describe(exc, origin, where)) from exc


_KINDS = frozenset({"modbus", "simulated", "camera", "chirpstack"})


def _describe(exc: ValidationError, origin: str, where: dict[tuple[int, int], str]) -> str:
    """``describe_validation_error`` without pydantic's union tag (``devices.0.sensors.1.model``,
    not ``devices.0.chirpstack.sensors.1.model``); a sensor taken from a site file is named by
    the site file's key (``where``: (device, site sensor) → ``FILE: sites.0.devices.2``)."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        if len(loc) > 2 and loc[0] == "devices" and loc[2] in _KINDS:
            del loc[2]
        key = ".".join(str(p) for p in loc) or "(top level)"
        if len(loc) > 3 and loc[2] == "file_sensors":
            key = f"devices.{loc[1]}.sensors_file: sensors.{'.'.join(str(p) for p in loc[3:])}"
        site = (loc[1], loc[3]) if len(loc) > 3 and loc[2] == "site_sensors" else None
        if site is not None and isinstance(site[0], int) and isinstance(site[1], int) \
                and (site[0], site[1]) in where:
            rest = "".join(f".{p}" for p in loc[4:])
            key = f"devices.{site[0]}.site_file: {where[(site[0], site[1])]}{rest}"
        lines.append(f"{origin}: {key}: {err['msg']}{got_value(err['input'], err['msg'])}")
    return "\n".join(lines)


def _with_site_sensors(config: GatewayConfig, data: dict[str, Any],
                       origin: str) -> tuple[dict[str, Any], dict[tuple[int, int], str]]:
    """Fill each chirpstack connection's ``site_sensors`` from its ``site_file``: the ``lorawan``
    devices of the site file whose space this gateway is bound to (its ``spaces``, else the
    site file's entry for this gateway)."""
    devices = list(data["devices"])
    where: dict[tuple[int, int], str] = {}
    for i, d in enumerate(config.devices):
        if not isinstance(d, ChirpstackDevice) or d.site_file is None:
            continue
        path = config.path(d.site_file)
        try:
            site_file = read_site_file(path)
        except SiteFileError as exc:
            raise GatewayConfigError(f"{origin}: devices.{i}.site_file: {exc}") from exc
        bound = _bound_spaces(config, site_file, f"{origin}: devices.{i}.site_file: {path}")
        found = _site_lorawan(site_file, bound, str(path))
        for m, (key, _) in enumerate(found):
            where[(i, m)] = key
        devices[i] = {**devices[i], "site_sensors": [binding for _, binding in found]}
    return {**data, "devices": devices}, where


def _bound_spaces(config: GatewayConfig, site_file: SiteFile, where: str) -> set[SpaceRef]:
    if config.spaces is not None:
        return set(expand(config.spaces))
    if any(g.id == config.gateway for g in site_file.gateways):
        return set(site_file.bound_spaces(config.gateway))
    raise GatewayConfigError(f"{where}: gateway {config.gateway} is not in the site file and the "
                             "config lists no spaces: cannot tell which sensors are this gateway's")


def _site_lorawan(site_file: SiteFile, bound: set[SpaceRef],
                  path: str) -> list[tuple[str, dict[str, Any]]]:
    """(site file key, sensor binding) of each lorawan device bound to one of ``bound``."""
    out = []
    for s, site in enumerate(site_file.sites):
        for n, dev in enumerate(site.devices):
            if dev.kind != "lorawan":
                continue
            key = f"{path}: sites.{s}.devices.{n}"
            if len(dev.spaces) != 1 or dev.dev_eui is None:
                raise GatewayConfigError(f"{key}: a lorawan device needs a dev_eui and one space")
            space = f"{site.id}/{next(iter(dev.spaces))}"
            if SpaceRef.parse(space) not in bound:
                continue
            binding = {"dev_eui": dev.dev_eui, "id": dev.id, "space": space}
            binding.update({k: v for k in ("model", "occupied_path")
                            if (v := getattr(dev, k)) is not None})
            out.append((key, binding))
    return out


def load_gateway_config(path: Path | str) -> GatewayConfig:
    """Read and validate a gateway config file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GatewayConfigError(f"{path}: cannot read the gateway config: {exc}") from exc
    return parse_gateway_config(data, path.resolve().parent, str(path))


def _with_layouts(data: dict[str, Any], base_dir: Path, origin: str) -> dict[str, Any]:
    """Fill each camera's ``layout_spaces`` from its layout file (errors name the key)."""
    devices = data.get("devices")
    if not isinstance(devices, list):
        return data
    out = []
    for i, d in enumerate(devices):
        if isinstance(d, dict) and d.get("kind") == "camera" and isinstance(d.get("layout"), str):
            from occupancy.vision.errors import VisionError
            from occupancy.vision.layout import load_layout

            layout_path = Path(d["layout"])
            layout_path = layout_path if layout_path.is_absolute() else base_dir / layout_path
            try:
                layout = load_layout(layout_path, str(d.get("id")))
            except VisionError as exc:
                raise GatewayConfigError(f"{origin}: devices.{i}.layout: {exc}") from exc
            d = {**d, "layout_spaces": list(layout.ids)}
        out.append(d)
    return {**data, "devices": out}


def _with_sensor_files(data: dict[str, Any], base_dir: Path, origin: str) -> dict[str, Any]:
    """Fill each chirpstack connection's ``file_sensors`` from its ``sensors_file``: the answer
    of ``GET /v1/admin/{tenant}/gateways/{gw}/lorawan`` saved as is (``{"sensors": [...]}``,
    JSON or YAML) or a bare list of the same entries."""
    devices = data.get("devices")
    if not isinstance(devices, list):
        return data
    out = []
    for i, d in enumerate(devices):
        if isinstance(d, dict) and d.get("kind") == "chirpstack" and isinstance(d.get("sensors_file"), str):
            path = Path(d["sensors_file"])
            path = path if path.is_absolute() else base_dir / path
            d = {**d, "file_sensors": _read_sensors_file(path, f"{origin}: devices.{i}.sensors_file")}
        out.append(d)
    return {**data, "devices": out}


def _read_sensors_file(path: Path, where: str) -> list[Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GatewayConfigError(f"{where}: cannot read {path}: {exc}") from exc
    found = loaded.get("sensors") if isinstance(loaded, dict) else loaded
    if not isinstance(found, list):
        raise GatewayConfigError(f"{where}: {path} holds neither {{\"sensors\": [...]}} nor a list")
    return found


def _check_files(config: GatewayConfig, origin: str) -> None:
    """Files the config names must exist now, not at the first reconnect."""
    problems = _broker_files(config, config.broker, f"{origin}: broker")
    for i, d in enumerate(config.devices):
        if isinstance(d, ChirpstackDevice):
            problems += _broker_files(config, d.broker, f"{origin}: devices.{i}.broker")
    if problems:
        raise GatewayConfigError("\n".join(problems))


def _broker_files(config: GatewayConfig, b: BrokerSection, where: str) -> list[str]:
    problems = []
    if b.password_file is not None and not config.path(b.password_file).is_file():
        problems.append(f"{where}.password_file: no such file {config.path(b.password_file)}")
    if b.tls is not None:
        for key in ("ca", "cert", "key"):
            p = getattr(b.tls, key)
            if p is not None and not config.path(p).is_file():
                problems.append(f"{where}.tls.{key}: no such file {config.path(p)}")
    return problems
