"""A scenario file against the local stack: play, settle, verify, report.

``run_scenario(scenario, site_files, settings, data_dir=…)`` brings the chain
up with ``local_stack`` (on an embedded server, a fresh ``parkbazaar_sim``
database, so that the verdict is about this run only), plays the scenario
through real gateway nodes (``simulators.play.Player``) with each gateway's
own broker login, waits until what was sent is stored (or ``verify.settle_s``
passed), verifies against the API and the database, and writes the PNG
reports. ``hooks`` lets a test break the chain on purpose at a given step
(``run.stack.ingest.stop()``, …).

A scenario with LoRaWAN sensors also gets ChirpStack's own broker
(``chirpstack_broker``: a plain mosquitto of ours, else amqtt), as a real
ChirpStack has: the chain's broker lets each login publish only its own
topics, and the gateways subscribe to ChirpStack's integration elsewhere anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from occupancy.config import MqttUrl, Settings
from occupancy.sitefile import SiteFile, SiteFileError, read_site_file
from simulators import SimulationError
from simulators.engine import Engine, Step
from simulators.play import Player, PlayResult, shift_for
from simulators.scenario import Scenario
from simulators.verify import Verdict, VerifyInput, stored_seqs, verify
from stack.broker import amqtt_broker, with_login
from stack.db import connected
from stack.embedded import Mosquitto, mosquitto_binary
from stack.local import Stack, StackSpec, local_stack

Progress = Callable[[Step], None]


@dataclass
class ScenarioRun:
    """A scenario's run: the stack it ran on and what it produced."""

    stack: Stack
    engine: Engine
    play: PlayResult | None = None
    verdict: Verdict | None = None
    reports: list[Path] = field(default_factory=list)
    settle_s: float = 0.0


Hook = Callable[[Step, ScenarioRun], Awaitable[None]]


def scenario_site_files(scenario: Scenario) -> list[SiteFile]:
    """The site files a scenario runs on: its province's, or its site file (read once)."""
    if scenario.province is not None:
        from simulators.province import province_site_files

        return province_site_files(scenario.province)
    assert scenario.site_file is not None  # the scenario model requires one of the two
    try:
        return [read_site_file(scenario.site_file)]
    except SiteFileError as exc:
        raise SimulationError(str(exc)) from exc


def scenario_start(scenario: Scenario, tz: ZoneInfo, now: datetime) -> datetime:
    """The scenario's start as an aware time; by default the span before ``now``, on the minute."""
    if scenario.start is None:
        return (now - scenario.span).astimezone(tz).replace(second=0, microsecond=0)
    start = scenario.start
    return start.replace(tzinfo=tz) if start.tzinfo is None else start


def build_engine(scenario: Scenario, site_files: Sequence[SiteFile], now: datetime) -> Engine:
    """The scenario's engine, its events shifted so that the span ends when the run does."""
    start = scenario_start(scenario, ZoneInfo(site_files[0].tenant.timezone), now)
    shift = shift_for(start, scenario.span, scenario.speed, now)
    cameras = None
    if scenario.cameras:
        from simulators.camera import Cameras

        cameras = Cameras(scenario.cameras, seed=scenario.seed)
    return Engine(scenario, list(site_files), start=start, shift=shift, cameras=cameras)


async def run_scenario(scenario: Scenario, site_files: Sequence[SiteFile], settings: Settings, *,
                       data_dir: Path, external_api: str | None = None, do_verify: bool = True,
                       report_dir: Path | None = None, hooks: Hook | None = None,
                       progress: Progress | None = None,
                       stop: asyncio.Event | None = None) -> ScenarioRun:
    """See the module docstring."""
    spec = StackSpec(data_dir, site_files, database="parkbazaar_sim", fresh=True,
                     external_api=external_api)
    async with local_stack(settings, spec) as stack:
        run = await play_scenario(stack, scenario, site_files, do_verify=do_verify, hooks=hooks,
                                  progress=progress, stop=stop)
    if report_dir is not None:
        from simulators.report import write_reports

        tz = ZoneInfo(site_files[0].tenant.timezone)
        run.reports = await asyncio.to_thread(write_reports, run.engine, run.verdict, report_dir, tz)
    return run


async def play_scenario(stack: Stack, scenario: Scenario, site_files: Sequence[SiteFile], *,
                        do_verify: bool = True, hooks: Hook | None = None,
                        progress: Progress | None = None,
                        stop: asyncio.Event | None = None) -> ScenarioRun:
    """Play the scenario on a running stack, let it settle, verify it (``do_verify``)."""
    assert stack.api is not None, "a scenario is verified through an API"
    run = ScenarioRun(stack, build_engine(scenario, site_files, datetime.now(UTC)))
    settings = stack.settings
    async with contextlib.AsyncExitStack() as exits:
        chirpstack = None
        if run.engine.lorawan is not None:
            chirpstack = await exits.enter_async_context(chirpstack_broker(stack.data_dir))
        player = Player(run.engine, mqtt=settings.mqtt, prefix=settings.topic_prefix,
                        state_dir=stack.data_dir / "gateways", speed=scenario.speed,
                        progress=_on_step(run, hooks, progress), logins=stack.gateways,
                        chirpstack=chirpstack)
        run.play = await player.run(stop)
        try:
            run.settle_s = await settle(stack.dsn, run.play, scenario.verify.settle_s)
            if do_verify:
                run.verdict = await verify(_verify_input(run.engine, run.play, scenario),
                                           api=stack.api, dsn=stack.dsn)
        finally:
            await player.close()
        if run.verdict is not None:
            run.verdict.notes += lorawan_notes(run.engine, run.play)
    return run


@contextlib.asynccontextmanager
async def chirpstack_broker(data_dir: Path) -> AsyncIterator[MqttUrl]:
    """ChirpStack's own broker for the run: a plain mosquitto on 127.0.0.1, else amqtt."""
    if mosquitto_binary() is None:
        async with amqtt_broker() as url:
            yield MqttUrl.parse(with_login(url, "chirpstack", "simulated") + "?protocol=4")
        return
    broker = Mosquitto(data_dir / "chirpstack-broker", persistence=False)
    await asyncio.to_thread(broker.start)
    try:
        yield MqttUrl.parse(broker.url)
    finally:
        await asyncio.to_thread(broker.stop)


def lorawan_notes(engine: Engine, play: PlayResult) -> list[str]:
    """What the LoRaWAN side did: what was published, what the receivers made of it."""
    if engine.lorawan is None:
        return []
    p = engine.lorawan.published
    notes = [f"lorawan: {len(engine.lora)} devices published {p['up']} uplinks, "
             f"{p['duplicate']} duplicate copies, {p['late']} late, {p['join']} joins, "
             f"{p['status']} status events"]
    for gw, c in play.lorawan.items():
        notes.append(f"{gw[1]} receiver: {c.uplinks} uplinks applied, {c.duplicates} duplicates and "
                     f"{c.late} late frames dropped, {c.fcnt_resets} fCnt resets, {c.joins} joins, "
                     f"{c.unknown_devices} unknown DevEUIs, {c.undecodable} undecodable, "
                     f"{c.malformed} malformed")
    return notes


def _on_step(run: ScenarioRun, hooks: Hook | None, progress: Progress | None) -> Progress:
    pending: set[asyncio.Task[None]] = set()

    def on_step(step: Step) -> None:
        if progress is not None:
            progress(step)
        if hooks is not None:
            task = asyncio.ensure_future(hooks(step, run))
            pending.add(task)
            task.add_done_callback(pending.discard)

    return on_step


def _verify_input(engine: Engine, play: PlayResult, scenario: Scenario) -> VerifyInput:
    stamp = engine.stamp
    return VerifyInput(
        truth=engine.truth, sent=play.sent, start=stamp(engine.start), end=stamp(engine.end),
        checkpoints=[stamp(engine.start + timedelta(seconds=s)) for s in scenario.checkpoint_offsets()],
        step=timedelta(seconds=scenario.verify.history_step_s),
        camera_max_error=scenario.verify.camera_max_error, skewed=play.skewed,
        lorawan_late=engine.late_readings, lorawan_missing=play.lorawan_missing)


async def settle(dsn: str, play: PlayResult, limit_s: float) -> float:
    """Wait until every sent event is stored, or nothing new arrives for 3 s, or ``limit_s``."""
    started = time.monotonic()
    async with connected(dsn) as con:
        last, last_change = -1, time.monotonic()
        while time.monotonic() - started < limit_s:
            have = 0
            for gw, events in play.sent.items():
                have += len(await stored_seqs(con, gw, events))
            if have >= play.events:
                break
            if have != last:
                last, last_change = have, time.monotonic()
            elif time.monotonic() - last_change > 3.0:
                break
            await asyncio.sleep(0.3)
    return time.monotonic() - started
