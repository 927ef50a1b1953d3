"""``parkbazaar migrate`` (``ingest.migrate``) and ``parkbazaar ingest`` (``ingest.service``)."""

from __future__ import annotations

import argparse
from typing import Any

from ingest import BrokerUnavailable, DatabaseUnavailable, MigrationError
from ingest.migrate import migrate
from parkbazaar.clikit import (
    fail,
    missing_schema,
    run_on_database,
    run_until_signalled,
    settings_from,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("migrate", help="apply the database migrations (idempotent)")
    p.add_argument("--flavor", choices=["auto", "plain", "timescale"], default="auto",
                   help="TimescaleDB where available (auto), or force one")
    p.set_defaults(func=cmd_migrate)
    p = subparsers.add_parser("ingest", help="run the MQTT → PostgreSQL ingest service")
    p.add_argument("--client-id", help="MQTT client id of this worker (persistent session)")
    p.set_defaults(func=cmd_ingest)


def cmd_migrate(args: argparse.Namespace) -> int:
    done = run_on_database(args, lambda con: migrate(con, flavor=args.flavor), command="migrate",
                           failed=(MigrationError,), schema=False)
    print("applied: " + ", ".join(done) if done else "database is up to date")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.service import run_ingest

    overrides: dict[str, Any] = {"ingest": {"client_id": args.client_id}} if args.client_id else {}
    settings = settings_from(args, **overrides)
    unmigrated = missing_schema(settings)
    if unmigrated is not None:
        return fail("ingest", unmigrated, 1)
    try:
        return run_until_signalled(lambda stop: run_ingest(settings, stop))
    except (BrokerUnavailable, DatabaseUnavailable) as exc:  # bounded retries spent
        return fail("ingest", exc, 1)
