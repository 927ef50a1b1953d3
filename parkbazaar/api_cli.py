"""``parkbazaar api`` (the HTTP API and web page) and ``parkbazaar provision FILE``
(tokens: ``parkbazaar.token_cli``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import yaml
from pydantic import ValidationError

from dashboard_api import ProvisionError
from dashboard_api.provision import ProvisionReport, provision
from occupancy.config import describe_validation_error
from occupancy.sitefile import SiteFile, parse_site_file
from parkbazaar.clikit import settings_from

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


def read_site_file(path: Path) -> SiteFile:
    """Read and validate a site file; ``ValueError`` with ``FILE: key.path: message`` lines."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read site file: {exc}") from exc
    try:
        return parse_site_file(data)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc, str(path))) from exc


async def provision_dsn(dsn: str, site_file: SiteFile) -> ProvisionReport:
    con = await asyncpg.connect(dsn)
    try:
        return await provision(con, site_file)
    finally:
        await con.close()


def cmd_provision(args: argparse.Namespace) -> int:
    try:
        site_file = read_site_file(args.file)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    settings = settings_from(args)
    try:
        report = asyncio.run(provision_dsn(settings.dsn, site_file))
    except (ProvisionError, OSError, asyncpg.PostgresError) as exc:
        print(f"parkbazaar provision: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0
