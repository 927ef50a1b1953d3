"""What every subcommand shares: settings from ``--config``/environment,
logging, work on the configured database, and running a service until
SIGTERM/SIGINT asks it to stop."""

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
from stack.db import connected
from stack.local import Stack

Handler = Callable[[argparse.Namespace], int]
EXAMPLE_SITE_FILE = Path(__file__).resolve().parent / "examples" / "shiraz.yaml"  # packaged
T = TypeVar("T")


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The settings for this run; a config error ends the process with its message."""
    try:
        settings = load_settings(getattr(args, "config", None), **overrides)
    except ConfigError as exc:
        print(f"parkbazaar: configuration error\n{exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings


def fail(command: str, message: object, code: int) -> int:
    """Print ``parkbazaar COMMAND: message`` on stderr; ``code``, for the caller to return."""
    print(f"parkbazaar {command}: {message}", file=sys.stderr)
    return code


def run_on_database(args: argparse.Namespace, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                    command: str, refused: tuple[type[Exception], ...] = (),
                    failed: tuple[type[Exception], ...] = ()) -> T:
    """``work(connection)`` on the configured database, and its result.

    Ends the process (``SystemExit``) with 2 when ``work`` raises one of
    ``refused`` (an unknown name, a bad request), with 1 when the database
    cannot be reached or fails or ``work`` raises one of ``failed``; either way
    ``parkbazaar COMMAND: why`` on stderr.
    """
    settings = settings_from(args)

    async def main() -> T:
        async with connected(settings.dsn) as con:
            return await work(con)

    try:
        return asyncio.run(main())
    except refused as exc:
        why = exc.args[0] if len(exc.args) == 1 else exc  # a KeyError's text without its quotes
        raise SystemExit(fail(command, why, 2)) from exc
    except (OSError, asyncpg.PostgresError, *failed) as exc:
        raise SystemExit(fail(command, exc, 1)) from exc


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
