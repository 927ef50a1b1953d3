"""Authenticated streams end when their token does: ``guarded(source, pool, token_id)``.

How this works: a stream's messages come from its own generator, which may
sleep for long between them (the alerts stream reads every 10 s). The guard
runs that generator in a task that puts each message on a small queue; the
response reads the queue and, every ``CHECK_S`` seconds whatever the generator
does, reads the token's row (one primary-key lookup) — so it sees a
revocation made by any API process, the CLI or SQL, and an expiry, within
``CHECK_S`` plus one query. When the token is no longer valid the stream sends
a last ``closed`` event (``{"reason": "revoked"|"expired"|"unknown"}``) and
ends; the generator's task is cancelled. The check fails closed: when the
database cannot answer it, the stream ends with ``"unavailable"`` (a client
reconnects and is authenticated afresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from prometheus_client import Counter

from dashboard_api import DashboardError
from dashboard_api.auth import token_refusal
from dashboard_api.deps import acquire
from dashboard_api.live import sse

log = logging.getLogger(__name__)

CHECK_S = 2.0
STREAMS_CLOSED = Counter(
    "parkbazaar_api_streams_closed_by_token",
    "Authenticated streams ended because their token was revoked, expired or could not be checked",
    ["reason"])
_END = object()  # the source generator finished


async def token_end(pool: asyncpg.Pool, token_id: int) -> str | None:
    """Why a stream of this token must end now, or None while the token is valid."""
    try:
        async with acquire(pool) as con:
            return await token_refusal(con, token_id)
    except (DashboardError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("cannot check token %s of an open stream (%s): closing it", token_id, exc)
        return "unavailable"


async def guarded(
    source: AsyncIterator[str], pool: asyncpg.Pool, token_id: int, *, check_s: float = CHECK_S,
) -> AsyncIterator[str]:
    """The messages of ``source`` while the token is valid, then a ``closed`` event."""
    queue: asyncio.Queue[object] = asyncio.Queue(1)
    pump = asyncio.create_task(_pump(source, queue), name=f"stream-of-token-{token_id}")
    loop = asyncio.get_running_loop()
    try:
        due = loop.time() + check_s
        while True:
            if loop.time() >= due:  # checked on time even when messages never stop coming
                reason = await token_end(pool, token_id)
                if reason is not None:
                    STREAMS_CLOSED.labels(reason).inc()
                    yield sse("closed", {"reason": reason})
                    return
                due = loop.time() + check_s
            try:
                item = await asyncio.wait_for(queue.get(), due - loop.time())
            except TimeoutError:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield str(item)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


async def _pump(source: AsyncIterator[str], queue: asyncio.Queue[object]) -> None:
    """Move the source's messages to the queue; its end or its error follows them."""
    try:
        async for item in source:
            await queue.put(item)
    except Exception as exc:  # handed to the reader, which raises it in the response
        await queue.put(exc)
        return
    await queue.put(_END)
