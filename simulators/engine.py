"""The pure core of a scenario run: simulated time in, events, actions and truth out.

How this works: ``Engine(scenario, site_files, start=…, shift=…)`` builds a
model per simulated site and a ``Target`` per site (its gateway and spaces).
``begin()`` draws every space's initial state and returns the first step;
each ``step()`` advances the simulated clock by ``tick_s``, asks every model
for its changes, records them as truth, passes them through the faults
(a silent sensor says nothing, a flapping one toggles, a skewed gateway
stamps wrong times), lets cameras observe their spaces instead of sensors,
and returns the events each gateway must store plus the actions the shell
must take (cut or restore an uplink, send a duplicate burst or malformed
payloads). Nothing here reads a clock or does I/O, so the same scenario,
seed and start give the same steps, byte for byte.

Simulated devices are read like real ones: each site's sensors, and each
camera, is a device of its gateway with its own ``occupancy.statemachine``
machine (kept by ``gateway.devices.DeviceMachines``, as in the gateway
service). A sensor's reading is 1 or 0 (nothing while it is silent), a
camera's is one frame's detector scores; each tick ends with a ``Tick``, so
changes, the camera's debounce, expiry to ``unknown`` of a silent sensor and
the heartbeat every ``heartbeat_s`` all come from that one machine.

LoRaWAN sensors (the scenario's ``lorawan`` entries) are one device each,
with its own machine (``Source.LORAWAN``, the entry's staleness bound). Their
readings do not come from the engine: each step carries the ChirpStack
events the fleet (``simulators.lorawan``) publishes during the tick, the
shell passes them through the broker to the gateway's ChirpStack receiver,
and hands what it made of them back with ``receive(step, heard)``: those
readings, in the order they arrived, then the tick for the LoRaWAN machines.
A reading older than its machine's clock (a late frame the receiver let
through) is taken at the machine's time: it then shows as a false change.

An event's ``at`` is its simulated time plus ``shift``: the shell picks the
shift so that the simulated span ends when the run does, so no event is in
the future for ingest and the final states are fresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.devices import DeviceMachines, EventDraft
from occupancy.ids import DeviceId, SiteId, SpaceId, SpaceRef
from occupancy.lorawan.receiver import SensorReading
from occupancy.model import EventKind, Source, SpaceState
from occupancy.sitefile import Site, SiteFile
from occupancy.statemachine import Policy
from simulators import SimulationError
from simulators.faults import Action, Faults, GwKey
from simulators.lorawan import LoraDevice, LorawanFleet, Publication, devices_for
from simulators.market import MarketParams
from simulators.models import SiteModel, gateway_of, hash_seed, model_for
from simulators.parking import ParkingParams
from simulators.scenario import Scenario
from simulators.truth import SiteKey, SpaceKey, Truth


@dataclass(frozen=True, slots=True)
class Step:
    """One tick: the simulated time, the events per gateway, the actions."""

    index: int
    sim_t: datetime
    at: datetime
    events: dict[GwKey, list[EventDraft]]
    actions: list[Action]
    skew: dict[GwKey, int] = field(default_factory=dict)  # seconds the gateway's clock is off
    publications: list[Publication] = field(default_factory=list)  # ChirpStack events, in order


@dataclass
class Target:
    """A simulated site: its model, its gateway, the spaces it reports."""

    tenant: str
    site: Site
    gateway: str
    spaces: list[SpaceId]
    model: SiteModel | None

    @property
    def key(self) -> SiteKey:
        return self.tenant, self.site.id

    @property
    def gw(self) -> GwKey:
        return self.tenant, self.gateway

    @property
    def sensors(self) -> str:
        """The name of the site's sensors as one device of its gateway."""
        return f"sensors:{self.tenant}/{self.site.id}"

    def ref(self, space: SpaceId | str) -> SpaceRef:
        return SpaceRef(SiteId(self.site.id), SpaceId(space))


@dataclass(frozen=True, slots=True)
class CameraUnit:
    """A simulated camera as a device: its spaces and how many frames confirm a change.

    ``is_truth``: a replayed camera has no truth to be scored against; what
    its machine confirms is recorded as the truth the chain must deliver."""

    device: str
    target: Target
    spaces: tuple[SpaceRef, ...]
    confirm_frames: int
    is_truth: bool


@dataclass(frozen=True, slots=True)
class CameraReading:
    """One frame of one camera: the detector's score per space, at a simulated time."""

    device: str
    sim_t: datetime
    scores: dict[SpaceRef, float]


def make_model(site: Site, scenario: Scenario, tz: ZoneInfo) -> SiteModel:
    """The site's model with the scenario's parameters."""
    if site.kind == "parking":
        p = scenario.parking
        params = ParkingParams(dwell_median_s=p.dwell_median_min * 60, dwell_sigma=p.dwell_sigma,
                               disabled_share=p.disabled_share, ev_share=p.ev_share,
                               weekend=tuple(d.lower() for d in p.weekend))
        return model_for(site, seed=hash_seed(scenario.seed, site.id), tz=tz, parking=params)
    m = scenario.market
    return model_for(site, seed=scenario.seed, tz=tz, market=MarketParams(
        absent_share=m.absent_share, arrive_mean_s=-m.arrive_before_open_min * 60))


class Engine:
    """See the module docstring."""

    def __init__(self, scenario: Scenario, site_files: list[SiteFile], *, start: datetime,
                 shift: timedelta = timedelta(0), cameras: CameraHub | None = None) -> None:
        self.scenario = scenario
        self.start = start
        self.shift = shift
        self.tick = timedelta(seconds=scenario.tick_s)
        self.steps = int(scenario.span / self.tick)
        self.truth = Truth()
        self.targets = self._targets(site_files)
        self.cameras = cameras
        self.machines = DeviceMachines()
        self._index = 0
        self._watched: set[SpaceKey] = set()
        self._units: dict[str, CameraUnit] = {}
        self._gw_of: dict[str, GwKey] = {}
        self.faults = Faults(scenario, self.targets, self.truth, start=start, tick=self.tick, shift=shift)
        self.lora_machines = DeviceMachines()
        devices = devices_for(scenario, self.targets) if scenario.lorawan else []
        self.lora: dict[str, LoraDevice] = {d.dev_eui: d for d in devices}
        self.lorawan = LorawanFleet(devices, seed=scenario.seed, start=start, tick=self.tick,
                                    shift=shift, truth=self.truth) if devices else None
        self._lora_spaces = {d.space for d in devices}
        self.late_readings = 0  # readings older than their machine's clock (should be none)
        for d in devices:
            self.truth.space_stale_after[d.space] = timedelta(seconds=d.spec.stale_s)

    # ---- set-up ------------------------------------------------------------

    def _targets(self, site_files: list[SiteFile]) -> list[Target]:
        wanted = set(self.scenario.sites) if self.scenario.sites else None
        replayed = {c.site for c in self.scenario.cameras if c.replay is not None}
        out = []
        for sf in site_files:
            tz = ZoneInfo(sf.tenant.timezone)
            for site in sf.sites:
                if wanted is not None and site.id not in wanted:
                    continue
                gw = gateway_of(sf, site.id)
                spaces = [r.space for r in sf.bound_spaces(gw) if r.site == site.id]
                model = None if site.id in replayed else make_model(site, self.scenario, tz)
                out.append(Target(sf.tenant.id, site, gw, spaces, model))
                self.truth.stale_after[(sf.tenant.id, site.id)] = timedelta(seconds=site.stale_after_s)
        missing = (wanted or set()) - {t.site.id for t in out}
        if missing:
            raise SimulationError(f"scenario names unknown sites: {sorted(missing)}")
        return out

    @property
    def end(self) -> datetime:
        return self.start + self.tick * self.steps

    def stamp(self, sim_t: datetime) -> datetime:
        return sim_t + self.shift

    # ---- the run -------------------------------------------------------------

    def begin(self) -> Step:
        """The first readings of every device: initial states go out as changes."""
        for t in self.targets:
            if t.model is not None:
                for space, state in t.model.initial_states(t.spaces, self.start):
                    self.truth.record((t.tenant, t.site.id, space), self.stamp(self.start), state)
        units = self.cameras.attach(self) if self.cameras is not None else []
        self._watched = set(self.cameras.watched) if self.cameras is not None else set()
        both = sorted(self._watched & {d.space for d in self.lora.values()})
        if both:
            raise SimulationError(f"spaces both camera-watched and LoRaWAN: {[k[2] for k in both[:5]]}")
        self._add_machines(units)
        return self._tick(0, self.start)

    def step(self) -> Step | None:
        """The next tick, or ``None`` once the span is simulated."""
        if self._index >= self.steps:
            return None
        self._index += 1
        sim_t = self.start + self.tick * self._index
        for t in self.targets:
            if t.model is not None:
                for space, state in t.model.advance(sim_t):
                    self.truth.record((t.tenant, t.site.id, space), self.stamp(sim_t), state)
        return self._tick(self._index, sim_t)

    def run(self) -> Iterator[Step]:
        """Every step, ``begin()`` first."""
        yield self.begin()
        while (s := self.step()) is not None:
            yield s

    # ---- what the gateways say ------------------------------------------------

    def _add_machines(self, units: list[CameraUnit]) -> None:
        start = self.stamp(self.start)
        for t in self.targets:
            policy = Policy(stale_after_s=t.site.stale_after_s, heartbeat_s=self.scenario.heartbeat_s)
            spaces = [t.ref(s) for s in t.spaces if self._bus_sensor((t.tenant, t.site.id, s))]
            self.machines.add(t.sensors, spaces, policy, Source.SIMULATOR, start=start)
            self._gw_of[t.sensors] = t.gw
        for d in self.lora.values():
            t = self._target(d.space)
            policy = Policy(stale_after_s=d.spec.stale_s, heartbeat_s=self.scenario.heartbeat_s)
            self.lora_machines.add(d.dev_eui, [t.ref(d.space[2])], policy, Source.LORAWAN,
                                   device=DeviceId(d.device), start=start)
            self._gw_of[d.dev_eui] = t.gw
        for u in units:
            policy = Policy(confirm_readings=u.confirm_frames, stale_after_s=u.target.site.stale_after_s,
                            heartbeat_s=self.scenario.heartbeat_s)
            self.machines.add(u.device, u.spaces, policy, Source.CAMERA, device=DeviceId(u.device),
                              start=start)
            self._units[u.device] = u
            self._gw_of[u.device] = u.target.gw

    def _tick(self, index: int, sim_t: datetime) -> Step:
        """Every device's readings up to ``sim_t``, then time passes for every machine."""
        events: dict[GwKey, list[EventDraft]] = {t.gw: [] for t in self.targets}
        readings = self.cameras.readings(self, sim_t) if self.cameras is not None else []
        for r in readings:
            drafts = self.machines.observe(r.device, self.stamp(r.sim_t), r.scores)
            self._camera_truth(self._units[r.device], drafts)
            events[self._gw_of[r.device]] += drafts
        for t in self.targets:
            events[t.gw] += self.machines.observe(t.sensors, self.stamp(sim_t), self._sensors(t, sim_t))
        for key, drafts in self.machines.tick_each(self.stamp(sim_t)).items():
            events[self._gw_of[key]] += drafts
        skew = {t.gw: s for t in self.targets if (s := self.faults.skew(t, sim_t))}
        return Step(index, sim_t, self.stamp(sim_t), events, self.faults.actions(sim_t), skew,
                    self._publications(index, sim_t))

    def _publications(self, index: int, sim_t: datetime) -> list[Publication]:
        if self.lorawan is None:
            return []
        now_s = (sim_t - self.start).total_seconds()
        prev_s = None if index == 0 else now_s - self.tick.total_seconds()
        return self.lorawan.step(prev_s, now_s, lambda key: self.faults.sensor_says(key, sim_t),
                                 final=index == self.steps)

    def receive(self, step: Step, readings: list[SensorReading]) -> dict[GwKey, list[EventDraft]]:
        """What the gateways' ChirpStack receivers made of the step's publications, in the
        order they arrived, into the LoRaWAN machines; then time passes for them."""
        events: dict[GwKey, list[EventDraft]] = {}
        for r in readings:
            if r.dev_eui not in self.lora or r.occupied is None:
                continue  # a join, a status, a frame without occupancy: nothing to observe
            machine = self.lora_machines.machine(r.dev_eui)
            at = r.at
            if machine.now is not None and at < machine.now:
                self.late_readings += 1
                at = machine.now
            drafts = self.lora_machines.observe(r.dev_eui, at, {r.space: 1.0 if r.occupied else 0.0})
            events.setdefault(self._gw_of[r.dev_eui], []).extend(drafts)
        for key, drafts in self.lora_machines.tick_each(self.stamp(step.sim_t)).items():
            if drafts:
                events.setdefault(self._gw_of[key], []).extend(drafts)
        return events

    def _bus_sensor(self, key: SpaceKey) -> bool:
        """A space read by the site's simulated bus sensors (not a camera, not LoRaWAN)."""
        return key not in self._watched and key not in self._lora_spaces

    def _target(self, key: SpaceKey) -> Target:
        return next(t for t in self.targets if (t.tenant, t.site.id) == (key[0], key[1]))

    def _sensors(self, t: Target, sim_t: datetime) -> dict[SpaceRef, float]:
        """What the site's sensors read at ``sim_t``: 1 occupied, 0 free; silent ones nothing."""
        out = {}
        for space in t.spaces:
            key = (t.tenant, t.site.id, space)
            state = self.faults.sensor_says(key, sim_t) if self._bus_sensor(key) else None
            if state is not None and state is not SpaceState.UNKNOWN:
                out[t.ref(space)] = 1.0 if state is SpaceState.OCCUPIED else 0.0
        return out

    def _camera_truth(self, unit: CameraUnit, drafts: list[EventDraft]) -> None:
        if unit.is_truth:
            for d in drafts:
                if d.kind is EventKind.CHANGE:
                    self.truth.record((unit.target.tenant, d.space.site, d.space.space), d.at, d.state)


class CameraHub:
    """What the engine needs of the cameras (``simulators.camera.Cameras``)."""

    watched: set[SpaceKey]

    def attach(self, engine: Engine) -> list[CameraUnit]:
        """Set the cameras up over the engine's sites; the devices they are."""
        raise NotImplementedError

    def readings(self, engine: Engine, sim_t: datetime) -> list[CameraReading]:
        """Every frame due up to ``sim_t``, in time order per camera."""
        raise NotImplementedError
