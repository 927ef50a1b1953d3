"""``parkbazaar api`` (the HTTP API and web page) and ``parkbazaar provision FILE``
(tokens: ``parkbazaar.token_cli``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dashboard_api import ProvisionError
from dashboard_api.provision import provision
from occupancy.sitefile import SiteFileError, read_site_file
from parkbazaar.clikit import missing_schema, run_on_database, settings_from

if TYPE_CHECKING:
    from fastapi import FastAPI


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("api", help="serve the HTTP API and the live web page")
    p.add_argument("--host", help="address to listen on (default: settings api.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: settings api.port, 8000)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes sharing the port, each with its own pool, cache and "
                        "change feed (default 1)")
    p.set_defaults(func=cmd_api)
    p = subparsers.add_parser("provision", help="load a site file (YAML) into the database")
    p.add_argument("file", type=Path, metavar="FILE", help="site file, e.g. examples/shiraz.yaml")
    p.set_defaults(func=cmd_provision)


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from dashboard_api.app import create_app

    settings = settings_from(args)
    unmigrated = missing_schema(settings)
    if unmigrated is not None:  # it still serves: /readyz answers 503 with the same reason
        print(f"parkbazaar api: {unmigrated}", file=sys.stderr)
    host = args.host or settings.api.host
    port = settings.api.port if args.port is None else args.port
    if args.workers < 1:
        print("parkbazaar api: --workers must be at least 1", file=sys.stderr)
        return 2
    # uvicorn handles SIGTERM/SIGINT itself: stop accepting, finish requests, run lifespan exit.
    if args.workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())
        return 0
    # Worker processes are spawned: each builds the app from the same file and environment.
    if args.config:
        os.environ["PARKBAZAAR_CONFIG"] = str(Path(args.config).resolve())
    uvicorn.run("parkbazaar.api_cli:app_from_environment", factory=True, workers=args.workers,
                host=host, port=port, log_level=settings.log_level.lower())
    return 0


def app_from_environment() -> FastAPI:
    """The app of one of several ``parkbazaar api --workers`` processes (a uvicorn factory)."""
    from dashboard_api.app import create_app
    from occupancy.config import load_settings

    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(settings)


def cmd_provision(args: argparse.Namespace) -> int:
    try:
        site_file = read_site_file(args.file)
    except SiteFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    report = run_on_database(args, lambda con: provision(con, site_file), command="provision",
                             failed=(ProvisionError,))
    print("\n".join(report.lines()))
    return 0
