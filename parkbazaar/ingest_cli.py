"""``parkbazaar migrate`` and ``parkbazaar ingest``."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from ingest import MigrationError
from ingest.migrate import migrate
from parkbazaar.clikit import run_until_signalled, settings_from


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("migrate", help="apply the database migrations (idempotent)")
    p.add_argument("--flavor", choices=["auto", "plain", "timescale"], default="auto",
                   help="TimescaleDB where available (auto), or force one")
    p.set_defaults(func=cmd_migrate)
    p = subparsers.add_parser("ingest", help="run the MQTT → PostgreSQL ingest service")
    p.add_argument("--client-id", help="MQTT client id of this worker (persistent session)")
    p.set_defaults(func=cmd_ingest)


async def migrate_dsn(dsn: str, flavor: str = "auto") -> list[str]:
    con = await asyncpg.connect(dsn)
    try:
        return await migrate(con, flavor=flavor)
    finally:
        await con.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        done = asyncio.run(migrate_dsn(settings.dsn, args.flavor))
    except (MigrationError, OSError, asyncpg.PostgresError) as exc:
        print(f"parkbazaar migrate: {exc}", file=sys.stderr)
        return 1
    print("applied: " + ", ".join(done) if done else "database is up to date")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.service import run_ingest

    overrides = {"ingest": {"client_id": args.client_id}} if args.client_id else {}
    settings = settings_from(args, **overrides)
    return run_until_signalled(lambda stop: run_ingest(settings, stop))
