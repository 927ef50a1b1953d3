"""The API's response cache (fake clock, no I/O): keys, conditional requests, one
shared load per key, stale-while-revalidate, and loads that race a change."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from dashboard_api.http import ResponseCache, cache_key, etag_of, not_modified


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cache_key_is_path_and_query_as_sent() -> None:
    assert cache_key({"path": "/v1/sites/t/s", "query_string": b""}) == "/v1/sites/t/s"
    assert cache_key({"path": "/v1/sites", "query_string": b"kind=market&min_free=1"}) == (
        "/v1/sites?kind=market&min_free=1"
    )
    assert cache_key({"path": "/v1/sites", "query_string": b"min_free=1&kind=market"}) != (
        cache_key({"path": "/v1/sites", "query_string": b"kind=market&min_free=1"})
    )


@pytest.mark.parametrize(
    ("sent", "expected"),
    [('W/"a"', True), (' W/"b" , W/"a"', True), ("*", True), ('W/"b"', False), ("", False)],
)
def test_not_modified(sent: str, expected: bool) -> None:
    assert not_modified(sent, 'W/"a"') is expected


def test_fresh_for_ttl_then_gone_unless_reloading() -> None:
    clock = Clock()
    cache = ResponseCache(1.0, clock)
    etag = cache.put("k", b"one", route="r")
    assert cache.get("k") == (b"one", etag)
    entry = cache.entry("k")
    assert entry is not None and entry.route == "r"
    clock.now += 1.0
    assert cache.get("k") is None and cache.entry("k") is None


def test_ttl_zero_stores_nothing() -> None:
    cache = ResponseCache(0.0, Clock())
    cache.put("k", b"one")
    assert cache.get("k") is None and cache.entry("k") is None


async def test_concurrent_misses_share_one_load() -> None:
    cache = ResponseCache(5.0, Clock())
    calls = 0
    gate = asyncio.Event()

    async def load() -> bytes:
        nonlocal calls
        calls += 1
        await gate.wait()
        return b"body"

    tasks = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1 and {r[0] for r in results} == {b"body"}


async def test_stale_entry_answers_while_one_request_reloads_it() -> None:
    clock = Clock()
    cache = ResponseCache(1.0, clock)
    await cache.get_or_load("k", _const(b"old"))
    clock.now += 2.0  # expired by the clock
    gate, slow = _gated(b"new")
    reload = asyncio.create_task(cache.get_or_load("k", slow))
    await asyncio.sleep(0)
    stale = cache.entry("k")
    assert stale is not None and stale.body == b"old"  # served meanwhile
    assert cache.get("k") is None  # but never as fresh
    gate.set()
    assert (await reload)[0] == b"new"
    fresh = cache.entry("k")
    assert fresh is not None and fresh.body == b"new" and cache.get("k") is not None


async def test_clear_makes_entries_stale_and_a_racing_load_is_stored_stale() -> None:
    cache = ResponseCache(60.0, Clock())
    await cache.get_or_load("a", _const(b"a1"))
    cache.clear()
    assert cache.get("a") is None and cache.entry("a") is None  # a change: next reader queries
    gate, slow = _gated(b"a2 (read before the change)")
    reload = asyncio.create_task(cache.get_or_load("a", slow))
    await asyncio.sleep(0)
    entry = cache.entry("a")
    assert entry is not None and entry.body == b"a1"  # stale while reloading
    cache.clear()  # another change commits while the query runs
    gate.set()
    await reload
    assert cache.get("a") is None, "a response read before the change must not count as fresh"
    assert (await cache.get_or_load("a", _const(b"a3")))[0] == b"a3"
    assert cache.get("a") == (b"a3", etag_of(b"a3"))


async def test_failed_load_reaches_every_waiter_and_caches_nothing() -> None:
    cache = ResponseCache(5.0, Clock())
    gate = asyncio.Event()

    async def broken() -> bytes:
        await gate.wait()
        raise LookupError("no such site")

    tasks = [asyncio.create_task(cache.get_or_load("k", broken)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert cache.entry("k") is None


def _const(body: bytes) -> Callable[[], Awaitable[bytes]]:
    async def load() -> bytes:
        return body

    return load


def _gated(body: bytes) -> tuple[asyncio.Event, Callable[[], Awaitable[bytes]]]:
    """A load that answers ``body`` once the event is set."""
    gate = asyncio.Event()

    async def load() -> bytes:
        await gate.wait()
        return body

    return gate, load
