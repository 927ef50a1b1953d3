"""A scenario against the whole chain: provision, ingest, API, simulated gateways, verify, report.

``run_chain(scenario, site_files, settings, …)`` runs in one asyncio loop:
it provisions the site files, starts ingest (``ingest.service.run_ingest``)
and the API (uvicorn on a free port) unless an external API is given, plays
the scenario through real gateway nodes (``simulators.play.Player``), waits
until what was sent is stored (or ``verify.settle_s`` passed), verifies
against the API and the database, and writes the report. ``hooks`` lets a
test break the chain on purpose at a given step (stop ingest, …).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import uvicorn

from dashboard_api.app import create_app
from dashboard_api.provision import provision
from ingest.migrate import migrate
from ingest.service import run_ingest
from occupancy.config import Settings
from occupancy.sitefile import SiteFile
from parkbazaar.demo import _Server
from parkbazaar.embedded import free_port
from simulators.engine import Engine, Step
from simulators.play import Player, PlayResult, shift_for
from simulators.scenario import Scenario
from simulators.verify import Verdict, VerifyInput, stored_seqs, verify

log = logging.getLogger("parkbazaar.simulate")


class IngestHandle:
    """The in-process ingest: ``stop()`` and ``start()`` it (tests break the chain with it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._task: asyncio.Task[dict[str, int]] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        self._stop = asyncio.Event()
        ready = asyncio.Event()
        self._task = asyncio.create_task(run_ingest(self.settings, self._stop, ready), name="ingest")
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED, timeout=30)
        waiter.cancel()
        if self._task.done():
            self._task.result()

    async def stop(self) -> None:
        if self._task is not None:
            self._stop.set()
            await asyncio.wait_for(self._task, 60)
            self._task = None


Hook = Callable[[Step, "Chain"], Awaitable[None]]


@dataclass
class Chain:
    """The services of a run and what it produced."""

    settings: Settings
    api: str
    ingest: IngestHandle | None
    engine: Engine | None = None
    play: PlayResult | None = None
    verdict: Verdict | None = None
    reports: list[Path] = field(default_factory=list)
    settle_s: float = 0.0


async def provision_all(dsn: str, site_files: list[SiteFile]) -> None:
    con = await asyncpg.connect(dsn)
    try:
        await migrate(con)
        for sf in site_files:
            await provision(con, sf)
    finally:
        await con.close()


@contextlib.asynccontextmanager
async def services(settings: Settings, api: str | None) -> AsyncIterator[Chain]:
    """Ingest and the API of this process, or only the given external API."""
    if api is not None:
        yield Chain(settings, api.rstrip("/"), None)
        return
    ingest = IngestHandle(settings)
    await ingest.start()
    port = free_port()
    server = _Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                    log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(), name="api")
    while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has no started event)
        await asyncio.sleep(0.05)
    try:
        yield Chain(settings, f"http://127.0.0.1:{port}", ingest)
    finally:
        server.should_exit = True
        await task
        await ingest.stop()


def scenario_start(scenario: Scenario, tz: ZoneInfo, now: datetime) -> datetime:
    """The scenario's start as an aware time; by default the span before ``now``, on the minute."""
    if scenario.start is None:
        return (now - scenario.span).astimezone(tz).replace(second=0, microsecond=0)
    start = scenario.start
    return start.replace(tzinfo=tz) if start.tzinfo is None else start


async def run_chain(scenario: Scenario, site_files: list[SiteFile], settings: Settings, *,
                    state_dir: Path, api: str | None = None, do_verify: bool = True,
                    report_dir: Path | None = None, hooks: Hook | None = None,
                    progress: Callable[[Step], None] | None = None,
                    stop: asyncio.Event | None = None,
                    logins: Mapping[tuple[str, str], tuple[str, str]] | None = None) -> Chain:
    """See the module docstring."""
    assert settings.database_url is not None
    assert settings.mqtt_url is not None
    await provision_all(settings.database_url, site_files)
    tz = ZoneInfo(site_files[0].tenant.timezone)
    start = scenario_start(scenario, tz, datetime.now(UTC))
    shift = shift_for(start, scenario.span, scenario.speed, datetime.now(UTC))
    cameras = None
    if scenario.cameras:
        from simulators.camera import Cameras

        cameras = Cameras(scenario.cameras, seed=scenario.seed)
    engine = Engine(scenario, site_files, start=start, shift=shift, cameras=cameras)
    async with services(settings, api) as chain:
        chain.engine = engine
        player = Player(engine, mqtt=settings.mqtt, prefix=settings.topic_prefix,
                        state_dir=state_dir, speed=scenario.speed,
                        progress=_progress(chain, hooks, progress), logins=logins)
        chain.play = await player.run(stop)
        try:
            chain.settle_s = await settle(settings.database_url, chain.play, scenario.verify.settle_s)
            if do_verify:
                chain.verdict = await verify(_verify_input(engine, chain.play, scenario),
                                             api=chain.api, dsn=settings.database_url)
        finally:
            await player.close()
    if report_dir is not None:
        from simulators.report import write_reports

        chain.reports = await asyncio.to_thread(write_reports, engine, chain.verdict, report_dir, tz)
    return chain


def _progress(chain: Chain, hooks: Hook | None,
              progress: Callable[[Step], None] | None) -> Callable[[Step], None]:
    pending: set[asyncio.Task[None]] = set()

    def on_step(step: Step) -> None:
        if progress is not None:
            progress(step)
        if hooks is not None:
            task = asyncio.ensure_future(hooks(step, chain))
            pending.add(task)
            task.add_done_callback(pending.discard)

    return on_step


def _verify_input(engine: Engine, play: PlayResult, scenario: Scenario) -> VerifyInput:
    stamp = engine.stamp
    return VerifyInput(
        truth=engine.truth, sent=play.sent, start=stamp(engine.start), end=stamp(engine.end),
        checkpoints=[stamp(engine.start + timedelta(seconds=s)) for s in scenario.checkpoint_offsets()],
        step=timedelta(seconds=scenario.verify.history_step_s),
        camera_max_error=scenario.verify.camera_max_error, skewed=play.skewed)


async def settle(dsn: str, play: PlayResult, limit_s: float) -> float:
    """Wait until every sent event is stored, or nothing new arrives for 3 s, or ``limit_s``."""
    started = time.monotonic()
    con = await asyncpg.connect(dsn)
    try:
        last, last_change = -1, time.monotonic()
        want = play.events
        while time.monotonic() - started < limit_s:
            have = 0
            for gw, events in play.sent.items():
                have += len(await stored_seqs(con, gw, [e.seq for e in events]))
            if have >= want:
                break
            if have != last:
                last, last_change = have, time.monotonic()
            elif time.monotonic() - last_change > 3.0:
                break
            await asyncio.sleep(0.3)
    finally:
        await con.close()
    return time.monotonic() - started
