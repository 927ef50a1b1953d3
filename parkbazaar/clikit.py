"""What every subcommand shares: settings from ``--config``/environment,
logging, and running a service until SIGTERM/SIGINT asks it to stop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from occupancy.config import ConfigError, Settings, load_settings

Handler = Callable[[argparse.Namespace], int]


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
