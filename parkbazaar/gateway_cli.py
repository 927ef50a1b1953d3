"""``parkbazaar gateway run``: a gateway node fed by a simulated sensor set.

Minimal for now: the node reports the first site it is bound to in the site
file, with the simulator standing in for the devices. The gateway issue adds
real device adapters, the camera loop and a gateway config.
"""

from __future__ import annotations

import argparse
import sys

from parkbazaar.clikit import settings_from
from parkbazaar.simulate_cli import add_run_arguments, load_site_file, run
from simulators import SimulationError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("gateway", help="run a gateway node")
    sub = p.add_subparsers(dest="gateway_command", metavar="ACTION", required=True)
    r = sub.add_parser("run", help="run a gateway fed by simulated sensors of its site")
    r.add_argument("--gateway", required=True, help="gateway id in the site file")
    r.add_argument("--site", help="site to report (default: the first site bound to the gateway)")
    add_run_arguments(r)
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    site_file = load_site_file(args.site_file)
    try:
        refs = site_file.bound_spaces(args.gateway)
    except StopIteration:
        print(f"parkbazaar gateway: {args.gateway!r} is not in the site file", file=sys.stderr)
        return 2
    site = args.site or (str(refs[0].site) if refs else None)
    if site is None:
        print(f"parkbazaar gateway: {args.gateway!r} is bound to no space", file=sys.stderr)
        return 2
    try:
        return run(args, settings, site_file, site, args.gateway)
    except (SimulationError, KeyError) as exc:
        print(f"parkbazaar gateway: {exc}", file=sys.stderr)
        return 2
