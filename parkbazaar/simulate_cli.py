"""``parkbazaar simulate``: a simulated site through a real gateway node, or a scenario file.

``parkbazaar simulate parking|market`` runs one site's model in scaled real
time against the configured broker (until Ctrl-C or ``--duration``).
``parkbazaar simulate SCENARIO.yaml [--verify] [--report DIR]`` runs a scenario
(``simulators/scenario.py``) against the whole chain: with no database or
broker configured it starts embedded ones, and it runs ingest and the API
in-process unless ``--api URL`` points at a running deployment
(``parkbazaar/scenario_cli.py``, on ``stack.scenario``; docs/simulators.md).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from occupancy.config import Settings
from occupancy.sitefile import SiteFile, SiteFileError, read_site_file
from parkbazaar.clikit import EXAMPLE_SITE_FILE, fail, run_until_signalled, settings_from
from parkbazaar.scenario_cli import cmd_scenario
from simulators import SimulationError
from simulators.models import gateway_of
from simulators.runner import SimStats, run_simulation


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("simulate", help="simulate a site through a gateway, or run a scenario file")
    p.add_argument("kind", metavar="parking|market|SCENARIO.yaml",
                   help="the kind of site to simulate, or a scenario file")
    p.add_argument("--verify", action="store_true",
                   help="scenario: compare the API and the database with the truth; exit 1 if wrong")
    p.add_argument("--report", type=Path, default=None, metavar="DIR",
                   help="scenario: write a PNG report per site into DIR")
    p.add_argument("--api", default=None, metavar="URL",
                   help="scenario: verify against this running API (needs its database_url and "
                        "mqtt_url configured; checked before the run); default: run the chain here")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="scenario: where embedded services keep their data (default: a temporary dir)")
    p.add_argument("--quiet", action="store_true", help="scenario: no progress bar")
    p.add_argument("--site", help="site id (default: the first site of that kind in the file)")
    p.add_argument("--gateway", help="gateway id (default: the gateway bound to the site)")
    add_run_arguments(p)
    p.set_defaults(speed=None, seed=None)  # a scenario's own unless given
    p.set_defaults(func=cmd_simulate)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options of a live site simulation (some also override a scenario's)."""
    p.add_argument("--site-file", type=Path, default=None,
                   help=f"YAML site file (default: examples/shiraz.yaml, {EXAMPLE_SITE_FILE})")
    p.add_argument("--speed", type=float, default=60.0,
                   help="simulated seconds per real second (default 60)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S real seconds (default: until SIGTERM/Ctrl-C)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--heartbeat", type=float, default=60.0, metavar="S",
                   help="restate every space every S real seconds (default 60)")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="where gateway outboxes live (default: DATA_DIR/gateways or "
                        ".parkbazaar/gateways)")


def site_file_path(given: Path | None) -> Path:
    """The site file to use: the one given, else ``examples/shiraz.yaml`` here, else the packaged one."""
    if given is not None:
        return given
    local = Path("examples/shiraz.yaml")
    return local if local.exists() else EXAMPLE_SITE_FILE


def pick_site(site_file: SiteFile, kind: str, site: str | None) -> str:
    if site is not None:
        return site
    for s in site_file.sites:
        if s.kind == kind:
            return s.id
    raise SimulationError(f"the site file has no {kind} site")


def pick_gateway(site_file: SiteFile, site: str, gateway: str | None) -> str:
    return gateway if gateway is not None else gateway_of(site_file, site)


def run(args: argparse.Namespace, settings: Settings, site_file: SiteFile, site: str,
        gateway: str) -> int:
    """Run the simulation until a signal or ``--duration``; print its summary."""
    state_dir = args.state_dir or (settings.data_dir or Path(".parkbazaar")) / "gateways"
    stats: list[SimStats] = []

    async def main(stop: asyncio.Event) -> None:
        stats.append(await run_simulation(
            site_file=site_file, site_id=site, gateway_id=gateway, mqtt=settings.mqtt,
            prefix=settings.topic_prefix, state_dir=state_dir, speed=args.speed or 60.0, stop=stop,
            duration_s=args.duration, seed=1 if args.seed is None else args.seed,
            heartbeat_s=args.heartbeat))

    run_until_signalled(main)
    print(stats[0].summary())
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.kind not in ("parking", "market"):
        return cmd_scenario(args)
    # a running demo already simulates its sites as their gateways: never join it
    settings = settings_from(args, beside_demo=False)
    try:
        site_file = read_site_file(site_file_path(args.site_file))
        site = pick_site(site_file, args.kind, args.site)
        if site_file.site(site).kind != args.kind:
            raise SimulationError(f"site {site!r} is not a {args.kind} site")
        return run(args, settings, site_file, site, pick_gateway(site_file, site, args.gateway))
    except (SiteFileError, SimulationError, KeyError) as exc:
        return fail("simulate", exc, 2)
