"""What every subcommand shares: settings from ``--config``/environment (or a
running demo's, when neither names a database: ``stack.running``), logging,
work on the configured database, and running a service until SIGTERM/SIGINT
asks it to stop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from occupancy.config import ConfigError, Settings, load_settings
from stack import SchemaMissing
from stack.db import connected, require_schema
from stack.local import Stack
from stack.running import find_demo, public_url

Handler = Callable[[argparse.Namespace], int]
EXAMPLE_SITE_FILE = Path(__file__).resolve().parent / "examples" / "shiraz.yaml"  # packaged
T = TypeVar("T")


def settings_from(args: argparse.Namespace, *, beside_demo: bool = True, **overrides: Any) -> Settings:
    """The settings for this run; a config error ends the process with its message.

    With ``beside_demo`` and no database configured, a running demo's database
    and broker (``with_running_demo``)."""
    try:
        settings = load_settings(getattr(args, "config", None), **overrides)
    except ConfigError as exc:
        print(f"parkbazaar: configuration error\n{exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return with_running_demo(settings) if beside_demo else settings


def with_running_demo(settings: Settings) -> Settings:
    """``settings`` with a running demo's database (and broker, unless one is configured) when
    no database is configured; said on stderr. Unchanged when none runs."""
    if settings.database_url is not None:
        return settings
    demo = find_demo(settings.data_dir)
    if demo is None:
        return settings
    print(f"parkbazaar: no database configured: using the running demo's (pid {demo.pid}, "
          f"{demo.path})", file=sys.stderr)
    update: dict[str, Any] = {"database_url": demo.database_url}
    if settings.mqtt_url is None and demo.mqtt_url is not None:
        update["mqtt_url"] = demo.mqtt_url
    return settings.model_copy(update=update)


def fail(command: str, message: object, code: int) -> int:
    """Print ``parkbazaar COMMAND: message`` on stderr; ``code``, for the caller to return."""
    print(f"parkbazaar {command}: {message}", file=sys.stderr)
    return code


def run_on_database(args: argparse.Namespace, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                    command: str, refused: tuple[type[Exception], ...] = (),
                    failed: tuple[type[Exception], ...] = (), schema: bool = True) -> T:
    """``work(connection)`` on the configured database, and its result.

    Ends the process (``SystemExit``) with 2 when ``work`` raises one of
    ``refused`` (an unknown name, a bad request), with 1 when the database
    cannot be reached or fails, has no parkbazaar schema (``schema``: checked
    first) or ``work`` raises one of ``failed``; either way ``parkbazaar
    COMMAND: why`` on stderr.
    """
    settings = settings_from(args)

    async def main() -> T:
        async with connected(settings.dsn) as con:
            if schema:
                await require_schema(con, settings.dsn)
            return await work(con)

    try:
        return asyncio.run(main())
    except refused as exc:
        why = exc.args[0] if len(exc.args) == 1 else exc  # a KeyError's text without its quotes
        raise SystemExit(fail(command, why, 2)) from exc
    except SchemaMissing as exc:
        raise SystemExit(fail(command, exc, 1)) from exc
    except failed as exc:
        raise SystemExit(fail(command, exc, 1)) from exc
    except (OSError, asyncpg.PostgresError) as exc:
        raise SystemExit(fail(command, f"{exc} (database {public_url(settings.dsn)})", 1)) from exc


def missing_schema(settings: Settings) -> SchemaMissing | None:
    """The ``SchemaMissing`` of a database that answers but was never migrated; None when it is
    migrated or does not answer within 5 s (services then retry on their own)."""

    async def probe() -> None:
        async with connected(settings.dsn) as con:
            await require_schema(con, settings.dsn)

    try:
        asyncio.run(asyncio.wait_for(probe(), 5.0))
    except SchemaMissing as exc:
        return exc
    except (OSError, TimeoutError, asyncpg.PostgresError):
        pass
    return None


def announce_credentials(stack: Stack) -> None:
    """Say where the broker secrets a local stack issued are kept (nothing when it issued none)."""
    if stack.credentials is not None:
        print(f"parkbazaar: broker credentials (no anonymous access) in {stack.credentials}", flush=True)


def run_until_signalled(main: Callable[[asyncio.Event], Coroutine[Any, Any, object]]) -> int:
    """Run ``main(stop)``; SIGTERM or SIGINT sets ``stop`` so it can drain and return."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
    return 0
