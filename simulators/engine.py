"""The pure core of a scenario run: simulated time in, events, actions and truth out.

How this works: ``Engine(scenario, site_files, start=…, shift=…)`` builds a
model per simulated site and a ``Target`` per site (its gateway and spaces).
``begin()`` draws every space's initial state and returns the first step;
each ``step()`` advances the simulated clock by ``tick_s``, asks every model
for its changes, records them as truth, passes them through the faults
(a silent sensor says nothing, a flapping one toggles, a skewed gateway
stamps wrong times), lets cameras observe their spaces instead of sensors,
and returns the events each gateway must observe plus the actions the shell
must take (cut or restore an uplink, send a duplicate burst or malformed
payloads). Heartbeats restate every space's *reported* state every
``heartbeat_s``. Nothing here reads a clock or does I/O, so the same
scenario, seed and start give the same steps, byte for byte.

An event's ``at`` is its simulated time plus ``shift``: the shell picks the
shift so that the simulated span ends when the run does, so no event is in
the future for ingest and the final states are fresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.outbox import EventDraft
from occupancy.ids import DeviceId, SiteId, SpaceId, SpaceRef
from occupancy.model import EventKind, Source, SpaceState
from occupancy.sitefile import Site, SiteFile
from simulators import SimulationError
from simulators.market import Market, MarketParams
from simulators.parking import ParkingLot, ParkingParams
from simulators.runner import SiteModel
from simulators.scenario import GatewayFault, Scenario, SpaceFault
from simulators.truth import FaultEntry, SiteKey, SpaceKey, Truth

GwKey = tuple[str, str]  # tenant, gateway


@dataclass(frozen=True, slots=True)
class Action:
    """Something the shell must do at ``at``: ``uplink_cut``/``uplink_restore``/
    ``duplicate_burst``/``malformed`` on ``gateway``."""

    at: datetime
    kind: str
    gateway: GwKey
    count: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """One tick: the simulated time, the events per gateway, the actions."""

    index: int
    sim_t: datetime
    at: datetime
    events: dict[GwKey, list[EventDraft]]
    actions: list[Action]
    skew: dict[GwKey, int] = field(default_factory=dict)  # seconds the gateway's clock is off


@dataclass
class Target:
    """A simulated site: its model, its gateway, the spaces it reports."""

    tenant: str
    site: Site
    gateway: str
    spaces: list[SpaceId]
    model: SiteModel | None
    reported: dict[SpaceId, SpaceState] = field(default_factory=dict)

    @property
    def key(self) -> SiteKey:
        return self.tenant, self.site.id

    @property
    def gw(self) -> GwKey:
        return self.tenant, self.gateway


def gateway_of(site_file: SiteFile, site_id: str) -> str:
    """The first gateway bound to ``site_id``."""
    for g in site_file.gateways:
        if any(r.site == site_id for r in site_file.bound_spaces(g.id)):
            return g.id
    raise SimulationError(f"no gateway of tenant {site_file.tenant.id} is bound to {site_id!r}")


def make_model(site: Site, scenario: Scenario, tz: ZoneInfo) -> SiteModel:
    seed = scenario.seed
    if site.kind == "parking":
        p = scenario.parking
        params = ParkingParams(dwell_median_s=p.dwell_median_min * 60, dwell_sigma=p.dwell_sigma,
                               disabled_share=p.disabled_share, ev_share=p.ev_share,
                               weekend=tuple(d.lower() for d in p.weekend))
        return ParkingLot(site, seed=hash_seed(seed, site.id), tz=tz, params=params)
    m = scenario.market
    return Market(site, seed=seed, tz=tz, params=MarketParams(
        absent_share=m.absent_share, arrive_mean_s=-m.arrive_before_open_min * 60))


def hash_seed(seed: int, name: str) -> int:
    """A per-site seed that does not depend on Python's hash randomisation."""
    return seed * 1_000_003 + sum((i + 1) * ord(c) for i, c in enumerate(name))


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
        self._index = 0
        self._next_beat = start
        self._watched: set[SpaceKey] = set()

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
        """Initial states of every space (as heartbeats, so late joiners have them)."""
        events: dict[GwKey, list[EventDraft]] = {}
        at = self.stamp(self.start)
        for t in self.targets:
            if t.model is not None:
                for space, state in t.model.initial_states(t.spaces, self.start):
                    self.truth.record((t.tenant, t.site.id, space), at, state)
        if self.cameras is not None:
            self.cameras.attach(self)
            self._watched = set(self.cameras.watched)
        changes = self._observe(self.start)
        for t in self.targets:
            events.setdefault(t.gw, []).extend(changes.get(t.key, []))
        self._next_beat = self.start + timedelta(seconds=self.scenario.heartbeat_s)
        return Step(0, self.start, at, events, self._actions(self.start))

    def step(self) -> Step | None:
        """The next tick, or ``None`` once the span is simulated."""
        if self._index >= self.steps:
            return None
        self._index += 1
        sim_t = self.start + self.tick * self._index
        at = self.stamp(sim_t)
        for t in self.targets:
            if t.model is not None:
                for space, state in t.model.advance(sim_t):
                    self.truth.record((t.tenant, t.site.id, space), at, state)
        changes = self._observe(sim_t)
        beat = sim_t >= self._next_beat
        if beat:
            self._next_beat = sim_t + timedelta(seconds=self.scenario.heartbeat_s)
        events: dict[GwKey, list[EventDraft]] = {}
        for t in self.targets:
            batch = changes.get(t.key, [])
            if beat:
                batch = batch + self._heartbeat(t, sim_t, {d.space.space for d in batch})
            events.setdefault(t.gw, []).extend(batch)
        skew = {t.gw: s for t in self.targets if (s := self._skew(t, sim_t))}
        return Step(self._index, sim_t, at, events, self._actions(sim_t), skew)

    def run(self) -> Iterator[Step]:
        """Every step, ``begin()`` first."""
        yield self.begin()
        while (s := self.step()) is not None:
            yield s

    # ---- what the gateways say ------------------------------------------------

    def _observe(self, sim_t: datetime) -> dict[SiteKey, list[EventDraft]]:
        """Changes of the reported state of every space at ``sim_t``."""
        out: dict[SiteKey, list[EventDraft]] = {}
        at = self.stamp(sim_t)
        camera_changes = self.cameras.observe(self, sim_t) if self.cameras is not None else {}
        for t in self.targets:
            drafts = []
            for space in t.spaces:
                key = (t.tenant, t.site.id, space)
                if key in self._watched:
                    cam = camera_changes.get(key)
                    if cam is not None:
                        drafts.append(self._draft(t, space, cam[0], at, Source.CAMERA, cam[1], cam[2]))
                    continue
                state = self._sensor_says(key, sim_t)
                if state is not None and t.reported.get(space) is not state:
                    t.reported[space] = state
                    drafts.append(self._draft(t, space, state, at, Source.SIMULATOR))
            out[t.key] = drafts
        return out

    def _draft(self, t: Target, space: SpaceId, state: SpaceState, at: datetime, source: Source,
               confidence: float | None = None, device: str | None = None,
               kind: EventKind = EventKind.CHANGE) -> EventDraft:
        if source is Source.CAMERA:
            t.reported[space] = state
        return EventDraft(SpaceRef(SiteId(t.site.id), space), state, at, source, confidence,
                          DeviceId(device) if device else None, kind)

    def _sensor_says(self, key: SpaceKey, sim_t: datetime) -> SpaceState | None:
        """What the sensor of ``key`` reports at ``sim_t``; ``None`` when it is silent."""
        offset = (sim_t - self.start).total_seconds()
        truth = self.truth.state_at(key, self.stamp(sim_t))
        for f in self._space_faults(key):
            if f.kind == "silent" and offset >= f.start_s:
                self.truth.silent_from.setdefault(key, self.stamp(self.start + timedelta(seconds=f.start_s)))
                return None
            flipped = int((offset - f.start_s) // f.period_s) % 2 == 0
            if f.kind == "flapping" and f.start_s <= offset < f.end_s and flipped:
                return SpaceState.FREE if truth is SpaceState.OCCUPIED else SpaceState.OCCUPIED
        return truth

    def _space_faults(self, key: SpaceKey) -> Iterator[SpaceFault]:
        for f in self.scenario.faults:
            if isinstance(f, SpaceFault) and f.site == key[1] and key[2] in f.spaces:
                yield f

    def _heartbeat(self, t: Target, sim_t: datetime, changed: set[SpaceId]) -> list[EventDraft]:
        at = self.stamp(sim_t)
        out = []
        for space in t.spaces:
            key = (t.tenant, t.site.id, space)
            if space in changed or space not in t.reported:
                continue
            if key not in self._watched and self._sensor_says(key, sim_t) is None:
                continue  # a silent sensor restates nothing
            source = Source.CAMERA if key in self._watched else Source.SIMULATOR
            out.append(EventDraft(SpaceRef(SiteId(t.site.id), space), t.reported[space], at,
                                  source, kind=EventKind.HEARTBEAT))
        return out

    def _skew(self, t: Target, sim_t: datetime) -> int:
        """Seconds the gateway's clock is off at ``sim_t`` (0: right).

        The shell applies it: an accelerated run stamps events in the past, so a
        clock *ahead* is measured against ingest's real clock (what it checks)."""
        offset = (sim_t - self.start).total_seconds()
        for f in self.scenario.faults:
            if (isinstance(f, GatewayFault) and f.kind == "clock_skew" and f.gateway == t.gateway
                    and f.start_s <= offset < f.end_s):
                return f.offset_s
        return 0

    # ---- faults the shell carries out -------------------------------------------

    def _actions(self, sim_t: datetime) -> list[Action]:
        """Gateway faults starting or ending in this tick ``(t - tick, t]``; each fault logged."""
        now = (sim_t - self.start).total_seconds()
        before = now - self.tick.total_seconds()
        at = self.stamp(sim_t)
        out = []
        for f in self.scenario.faults:
            if before < f.start_s <= now:
                self._log(f)
                if isinstance(f, GatewayFault) and f.kind != "clock_skew":
                    kind = "uplink_cut" if f.kind == "uplink_loss" else f.kind
                    out.append(Action(at, kind, self._gw(f.gateway), f.count))
            if isinstance(f, GatewayFault) and f.kind == "uplink_loss" and before < f.end_s <= now:
                out.append(Action(at, "uplink_restore", self._gw(f.gateway)))
        return out

    def _gw(self, gateway: str) -> GwKey:
        for t in self.targets:
            if t.gateway == gateway:
                return t.gw
        raise SimulationError(f"a fault names gateway {gateway!r}, which simulates no site")

    def _log(self, f: SpaceFault | GatewayFault) -> None:
        at = self.stamp(self.start + timedelta(seconds=f.start_s))
        until = self.stamp(self.start + timedelta(seconds=f.end_s)) if f.end_s > f.start_s else None
        if isinstance(f, SpaceFault):
            target, detail = f"{f.site}/{','.join(f.spaces)}", ""
            tenant = next(t.tenant for t in self.targets if t.site.id == f.site)
            if f.kind == "flapping" and until is not None:
                for space in f.spaces:
                    self.truth.excused[(tenant, f.site, space)].append(
                        (at, until + self.tick * 2))
        else:
            target = f.gateway
            detail = {"clock_skew": f"{f.offset_s:+d} s", "duplicate_burst": f"{f.count} events",
                      "malformed": f"{f.count} payloads"}.get(f.kind, "")
            if f.kind == "clock_skew" and until is not None:
                self._excuse_gateway(f.gateway, at, until + timedelta(seconds=max(f.offset_s, 0))
                                     + timedelta(seconds=self.scenario.heartbeat_s) + self.tick)
        self.truth.faults.append(FaultEntry(at, until, f.kind, target, detail))

    def _excuse_gateway(self, gateway: str, start: datetime, end: datetime) -> None:
        for t in self.targets:
            if t.gateway == gateway:
                for space in t.spaces:
                    self.truth.excused[(t.tenant, t.site.id, space)].append((start, end))


class CameraHub:
    """What the engine needs of the cameras (``simulators.camera.Cameras``)."""

    watched: set[SpaceKey]

    def attach(self, engine: Engine) -> None:
        raise NotImplementedError

    def observe(self, engine: Engine, sim_t: datetime
                ) -> dict[SpaceKey, tuple[SpaceState, float, str]]:
        raise NotImplementedError
