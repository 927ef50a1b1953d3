"""Run a site model in scaled real time and publish it through a real gateway node.

How this works: simulated time runs ``speed`` times faster than the wall
clock from ``start_at`` (default: now). Every tick the model is advanced to
the current simulated time and its changes are observed by a
``GatewayNode`` (outbox in ``state_dir/<gateway>.sqlite``). An event's
``at`` is the real wall-clock time it was emitted, never the simulated one,
so ingest never sees a time in the future. At start, and then every
``heartbeat_s`` real seconds, the current state of every space goes out as
``kind=heartbeat``. Outbox writes and the node's start/stop run in worker
threads so the event loop is never blocked on fsync or the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from gateway.node import GatewayNode, NodeStats
from gateway.outbox import EventDraft
from occupancy.config import MqttUrl
from occupancy.ids import SiteId, SpaceId, SpaceRef
from occupancy.model import EventKind, Source, SpaceState
from occupancy.sitefile import Site, SiteFile
from simulators import SimulationError
from simulators.market import Market
from simulators.parking import Change, ParkingLot

log = logging.getLogger(__name__)


class SiteModel(Protocol):
    """What the runner needs of a model (``ParkingLot``, ``Market``)."""

    def initial_states(self, spaces: Iterable[SpaceId], at: datetime) -> list[Change]: ...

    def advance(self, now: datetime) -> list[Change]: ...

    def states(self) -> dict[SpaceId, SpaceState]: ...


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


def model_for(site: Site, *, seed: int, tz: tzinfo) -> SiteModel:
    """The model of the site's kind."""
    if site.kind == "parking":
        return ParkingLot(site, seed=seed, tz=tz)
    return Market(site, seed=seed, tz=tz)


def site_spaces(site_file: SiteFile, site_id: str, gateway_id: str) -> list[SpaceId]:
    """The spaces of ``site_id`` that ``gateway_id`` is bound to."""
    try:
        refs = site_file.bound_spaces(gateway_id)
    except StopIteration as exc:
        raise SimulationError(f"gateway {gateway_id!r} is not in the site file") from exc
    spaces = [r.space for r in refs if r.site == site_id]
    if not spaces:
        raise SimulationError(f"gateway {gateway_id!r} is bound to no space of {site_id!r}")
    return spaces


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
) -> SimStats:
    """Simulate ``site_id`` through ``gateway_id`` until ``stop`` or ``duration_s``."""
    site = site_file.site(site_id)
    spaces = site_spaces(site_file, site_id, gateway_id)
    model = model_for(site, seed=seed, tz=ZoneInfo(site_file.tenant.timezone))
    node = GatewayNode(site_file.tenant.id, gateway_id, state_dir / f"{gateway_id}.sqlite",
                       mqtt, prefix)
    await asyncio.to_thread(node.start)
    run = _Run(node, SiteId(site_id), model, speed, start_at or datetime.now(UTC))
    try:
        await run.loop(spaces, stop, duration_s, heartbeat_s, tick_s)
    finally:
        await asyncio.to_thread(node.stop)
    return SimStats(site_id, gateway_id, len(spaces), run.changes, run.heartbeats, run.sim_start,
                    run.sim_now(), time.monotonic() - run.mono_start, node.stats())


class _Run:
    """The state of one run: the clocks and the counts."""

    def __init__(self, node: GatewayNode, site: SiteId, model: SiteModel, speed: float,
                 sim_start: datetime) -> None:
        self.node, self.site, self.model, self.speed = node, site, model, speed
        self.sim_start = sim_start
        self.mono_start = time.monotonic()
        self.changes = self.heartbeats = 0

    def sim_now(self) -> datetime:
        return self.sim_start + timedelta(seconds=(time.monotonic() - self.mono_start) * self.speed)

    async def loop(self, spaces: list[SpaceId], stop: asyncio.Event, duration_s: float | None,
                   heartbeat_s: float, tick_s: float) -> None:
        self.model.initial_states(spaces, self.sim_start)
        await self.heartbeat()
        next_beat = time.monotonic() + heartbeat_s
        end = None if duration_s is None else self.mono_start + duration_s
        while not stop.is_set() and (end is None or time.monotonic() < end):
            wait = tick_s if end is None else max(0.0, min(tick_s, end - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            changes = self.model.advance(self.sim_now())
            self.changes += await self.emit(changes, EventKind.CHANGE)
            if time.monotonic() >= next_beat:
                await self.heartbeat()
                next_beat = time.monotonic() + heartbeat_s

    async def heartbeat(self) -> None:
        self.heartbeats += await self.emit(list(self.model.states().items()), EventKind.HEARTBEAT)

    async def emit(self, changes: list[Change], kind: EventKind) -> int:
        if not changes:
            return 0
        at = datetime.now(UTC)
        drafts = [EventDraft(SpaceRef(self.site, space), state, at, Source.SIMULATOR, kind=kind)
                  for space, state in changes]
        await asyncio.to_thread(self.node.observe_many, drafts)
        return len(drafts)
