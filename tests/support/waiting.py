"""Waiting for an event, never for a time: poll a condition until it holds or a deadline.

The deadline only bounds a failing test; a passing one goes on the moment the
condition holds. ``wait_until`` is for the event loop, ``wait_until_sync`` for
threads and synchronous tests, ``wait_rows`` for the count of stored events.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Awaitable, Callable

import asyncpg

from tests.support.database import event_rows

POLL_S = 0.05


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0,
                     what: str | Callable[[], str] = "condition") -> None:
    """Until ``await check()`` is true; after ``timeout`` seconds, ``TimeoutError``
    naming ``what`` (a callable is asked at that moment, e.g. for a process's log)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_text(what)} not met in {timeout:g} s")
        await asyncio.sleep(POLL_S)


def wait_until_sync(check: Callable[[], bool], timeout: float = 30.0,
                    what: str | Callable[[], str] = "condition") -> None:
    """``wait_until`` for synchronous code (a thread, a sync test, paho's callbacks)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_text(what)} not met in {timeout:g} s")
        time.sleep(POLL_S / 2)


async def wait_rows(con: asyncpg.Connection, at_least: int, timeout: float = 60.0,
                    logs: Callable[[], str] = str) -> int:
    """Until ``occupancy_events`` holds at least ``at_least`` rows; returns the count.
    ``logs`` (e.g. the ingest processes' logs) goes into the failure message."""
    got = 0

    async def enough() -> bool:
        nonlocal got
        got = await event_rows(con)
        return got >= at_least

    await wait_until(enough, timeout, lambda: f"{at_least} stored events (have {got})\n{logs()}")
    return got


def _text(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def wait_http(url: str, timeout: float = 60.0) -> None:
    """Until ``url`` answers an HTTP GET with any success status."""
    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            return False

    wait_until_sync(answers, timeout, f"{url} answering")
