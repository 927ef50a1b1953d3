"""The stream guard on a real database: it checks the token on time even while its source
never pauses, ends with the source, passes the source's error on, and fails closed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import asyncpg
import pytest

from dashboard_api.token_guard import guarded
from tests.support.api import TENANT, seed_city, token


async def _endless() -> AsyncIterator[str]:
    for n in itertools.count():
        yield f"data: {n}\n\n"
        await asyncio.sleep(0)  # a message always ready: the guard must still look at the token


async def _few(n: int, error: Exception | None = None) -> AsyncIterator[str]:
    for i in range(n):
        yield f"data: {i}\n\n"
    if error is not None:
        raise error


async def _collect(source: AsyncIterator[str]) -> list[str]:
    return [m async for m in source]


async def test_guard_closes_a_busy_stream(database: str, db: asyncpg.Connection) -> None:
    await seed_city(database)
    await token(database, TENANT, "manager")
    async with asyncpg.create_pool(database, min_size=1, max_size=2) as pool:
        stream = guarded(_endless(), pool, 1, check_s=0.1)
        assert (await anext(stream)).startswith("data: ")
        await db.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = 1")
        rest = await asyncio.wait_for(_collect(stream), 5)
    assert rest[-1] == 'event: closed\ndata: {"reason":"revoked"}\n\n' and len(rest) > 1


async def test_guard_ends_with_its_source_and_passes_errors_on(database: str) -> None:
    await seed_city(database)
    await token(database, TENANT, "manager")
    async with asyncpg.create_pool(database, min_size=1, max_size=2) as pool:
        assert await asyncio.wait_for(_collect(guarded(_few(3), pool, 1, check_s=0.05)), 5) == [
            "data: 0\n\n", "data: 1\n\n", "data: 2\n\n"]
        with pytest.raises(RuntimeError, match="source broke"):
            await asyncio.wait_for(_collect(guarded(_few(1, RuntimeError("source broke")), pool, 1)), 5)
        stream = guarded(_endless(), pool, 1, check_s=0.05)
        await anext(stream)
    # the pool is closed: the token cannot be checked, so the stream ends
    rest = await asyncio.wait_for(_collect(stream), 5)
    assert rest[-1] == 'event: closed\ndata: {"reason":"unavailable"}\n\n'
