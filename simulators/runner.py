"""Run a site model in scaled real time and publish it through a real gateway node.

How this works: simulated time runs ``speed`` times faster than the wall
clock from ``start_at`` (default: now). Every tick the model is advanced to
the current simulated time and the state of every space is read, as a bay
sensor's 0/1, into the site's state machine (``gateway.devices``, the
machine a real gateway runs); what it produces is stored by a
``GatewayNode`` (outbox in ``state_dir/<gateway>.sqlite``). The first
reading goes out as changes (every space's first state), then changes as
they happen, and every ``heartbeat_s`` real seconds the machine restates
every space (``kind=heartbeat``). An event's ``at`` is the real wall-clock
time of the reading, never the simulated one, so ingest never sees a time in
the future.

With ``catch_up`` (at ``speed`` 1 only) the simulated clock *is* the real one:
the model is first played from ``start_at`` (in the past) up to now in steps
of ``CATCH_UP_STEP`` simulated seconds, as fast as the outbox takes it, each
reading stamped with its simulated time; then it runs live, stamped with the
wall clock as before. So the stored day is the simulated day: the first
arrival of a stall is the model's, not the moment the run started.

Outbox writes and the node's start/stop run in worker threads so the event
loop is never blocked on fsync or the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.devices import DeviceMachines, EventDraft
from gateway.node import GatewayNode, NodeStats
from occupancy.config import MqttUrl
from occupancy.ids import SiteId, SpaceId, SpaceRef
from occupancy.model import EventKind, Source, SpaceState
from occupancy.sitefile import SiteFile
from occupancy.statemachine import Policy
from simulators.models import SiteModel, model_for, site_spaces

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimStats:
    """What a run produced."""

    site: str
    gateway: str
    spaces: int
    changes: int
    heartbeats: int
    sim_start: datetime
    sim_end: datetime
    real_s: float
    node: NodeStats

    def summary(self) -> str:
        n = self.node
        return (f"{self.site} via {self.gateway}: {self.spaces} spaces, {self.changes} changes, "
                f"{self.heartbeats} heartbeat events, simulated {self.sim_start:%Y-%m-%d %H:%M}"
                f" → {self.sim_end:%Y-%m-%d %H:%M} in {self.real_s:.1f}s; boot {n.boot}, "
                f"sent {n.sent}, acked {n.acked}, resent {n.resent}, outbox {n.depth}")


async def run_simulation(
    *,
    site_file: SiteFile,
    site_id: str,
    gateway_id: str,
    mqtt: MqttUrl,
    prefix: str,
    state_dir: Path,
    speed: float = 60.0,
    stop: asyncio.Event,
    duration_s: float | None = None,
    seed: int = 1,
    heartbeat_s: float = 60.0,
    start_at: datetime | None = None,
    tick_s: float = 0.25,
    catch_up: bool = False,
) -> SimStats:
    """Simulate ``site_id`` through ``gateway_id`` until ``stop`` or ``duration_s``; with
    ``catch_up``, from ``start_at`` on the real clock (see the module docstring)."""
    if catch_up and speed != 1:
        raise ValueError("catch_up plays the real clock: speed must be 1")
    site = site_file.site(site_id)
    spaces = site_spaces(site_file, site_id, gateway_id)
    model = model_for(site, seed=seed, tz=ZoneInfo(site_file.tenant.timezone))
    node = GatewayNode(site_file.tenant.id, gateway_id, state_dir / f"{gateway_id}.sqlite",
                       mqtt, prefix)
    await asyncio.to_thread(node.start)
    policy = Policy(stale_after_s=site.stale_after_s, heartbeat_s=heartbeat_s)
    run = _Run(node, SiteId(site_id), model, speed, start_at or datetime.now(UTC))
    run.machines.add(SENSORS, [SpaceRef(run.site, s) for s in spaces], policy, Source.SIMULATOR,
                     start=run.sim_start if catch_up else datetime.now(UTC))
    try:
        if catch_up:
            await run.catch_up(spaces, stop)
        await run.loop(spaces, stop, duration_s, tick_s, started=catch_up)
    finally:
        await asyncio.to_thread(node.stop)
    return SimStats(site_id, gateway_id, len(spaces), run.changes, run.heartbeats, run.sim_start,
                    run.sim_now(), time.monotonic() - run.mono_start, node.stats())


SENSORS = "sensors"  # the simulated site's sensors, one device of the gateway
CATCH_UP_STEP = timedelta(seconds=30)  # simulated time between two readings while catching up


class _Run:
    """The state of one run: the clocks and the counts."""

    def __init__(self, node: GatewayNode, site: SiteId, model: SiteModel, speed: float,
                 sim_start: datetime) -> None:
        self.node, self.site, self.model, self.speed = node, site, model, speed
        self.machines = DeviceMachines()
        self.sim_start = sim_start
        self.mono_start = time.monotonic()
        self.changes = self.heartbeats = 0

    def sim_now(self) -> datetime:
        return self.sim_start + timedelta(seconds=(time.monotonic() - self.mono_start) * self.speed)

    async def catch_up(self, spaces: list[SpaceId], stop: asyncio.Event) -> None:
        """Play the model from ``sim_start`` to now, each reading stamped with its simulated
        time; afterwards the simulated clock is the wall clock."""
        self.model.initial_states(spaces, self.sim_start)
        at = began = self.sim_start
        while not stop.is_set() and at < datetime.now(UTC):
            self.model.advance(at)
            await self.read(at)
            at += CATCH_UP_STEP
        self.sim_start, self.mono_start = datetime.now(UTC), time.monotonic()
        log.info("%s caught up to now, %d changes and %d heartbeats from %s to %s", self.site,
                 self.changes, self.heartbeats, f"{began:%H:%M}", f"{at - CATCH_UP_STEP:%H:%M}")

    async def loop(self, spaces: list[SpaceId], stop: asyncio.Event, duration_s: float | None,
                   tick_s: float, *, started: bool = False) -> None:
        if not started:
            self.model.initial_states(spaces, self.sim_start)
        await self.read()
        end = None if duration_s is None else self.mono_start + duration_s
        while not stop.is_set() and (end is None or time.monotonic() < end):
            wait = tick_s if end is None else max(0.0, min(tick_s, end - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            self.model.advance(self.sim_now())
            await self.read()

    async def read(self, at: datetime | None = None) -> None:
        """Read every space into the machine, let time pass, store what it produced (stamped
        ``at``, default now)."""
        at = at or datetime.now(UTC)
        scores = {SpaceRef(self.site, space): 1.0 if state is SpaceState.OCCUPIED else 0.0
                  for space, state in self.model.states().items() if state is not SpaceState.UNKNOWN}
        drafts = self.machines.observe(SENSORS, at, scores) + self.machines.tick(at)
        await self.store(drafts)

    async def store(self, drafts: list[EventDraft]) -> None:
        if not drafts:
            return
        await asyncio.to_thread(self.node.observe_many, drafts)
        beats = sum(1 for d in drafts if d.kind is EventKind.HEARTBEAT)
        self.heartbeats += beats
        self.changes += len(drafts) - beats
