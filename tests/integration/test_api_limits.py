"""What the API refuses before it reads, on a real PostgreSQL: huge bodies (413, memory
flat), floods on every class of route and token guessing (429 with Retry-After), and
expensive reads bounded in time (statement timeout → 503) and in concurrency (a
bulkhead: public reads keep their connections while history reads pile up)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from prometheus_client import REGISTRY

from stack.embedded import free_port, wait_port
from tests.support.api import TENANT, app_for, asgi_client, seed_city, served, token
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
HISTORY = f"/v1/sites/{TENANT}/lot-a/history?step=1h"


def _huge_post(port: int, path: str, *, chunked: bool, size: int = 100 * MiB) -> tuple[int, int]:
    """POST ``size`` bytes of JSON without a token, sending until the server answers;
    returns (status, bytes sent before the answer came)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
                 .encode())
    chunk, sent, answer = b"[" + b"1," * (MiB // 2 - 1) + b"1", 0, b""
    try:
        while b"\r\n\r\n" not in answer:
            if select.select([sock], [], [], 0.01)[0]:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
                continue
            if sent < size:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
                sent += len(chunk)
    except OSError:  # the server closed the connection on a body it will not read
        answer += sock.recv(65536) if select.select([sock], [], [], 1)[0] else b""
    finally:
        sock.close()
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1") else 0, sent


def test_unauthenticated_huge_body_refused_before_read(database: str) -> None:
    """Ten 100 MB POSTs without a token, five with Content-Length and five chunked: each is a
    413, the chunked ones after at most a few MiB were sent, and the API's memory stays flat."""
    asyncio.run(seed_city(database))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKBAZAAR_")}
    env |= {"PYTHONPATH": str(REPO), "PARKBAZAAR_DATABASE_URL": database,
            "PARKBAZAAR_API__RATE_LIMIT_PER_S": "0", "PARKBAZAAR_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "parkbazaar", "api", "--port", str(port)], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port("127.0.0.1", port, 30)
        server = psutil.Process(proc.pid)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/sites").status_code == 200
        before = server.memory_info().rss
        results = [_huge_post(port, f"/v1/admin/{TENANT}/sites", chunked=i % 2 == 1) for i in range(10)]
        after = server.memory_info().rss
    finally:
        proc.terminate()
        proc.wait(20)
    print(f"API RSS before {before / MiB:.1f} MiB, after ten 100 MB bodies {after / MiB:.1f} MiB; {results}")
    assert [status for status, _ in results] == [413] * 10
    assert all(sent <= 16 * MiB for _, sent in results), "the server answered early, not after the body"
    assert after - before < 40 * MiB


@pytest.fixture
async def client(database: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed_city(database)
    async with asgi_client(app_for(database, max_body_bytes=4096, max_import_bytes=64 * 1024)) as c:
        yield c


async def test_body_over_limit_is_413_with_json_before_token_work(client: httpx.AsyncClient) -> None:
    body = b'{"id": "x", "name": "' + b"a" * 8000 + b'"}'
    r = await client.post(f"/v1/admin/{TENANT}/sites", content=body,
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text  # not 401: refused before the token is looked at
    assert "larger than 4096 bytes" in r.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(10):
            yield b" " * 1000

    r = await client.post(f"/v1/admin/{TENANT}/sites", content=chunks(),
                          headers={"Content-Type": "application/json", "Authorization": "Bearer x"})
    assert r.status_code == 413, r.text
    assert r.json() == {"detail": "the request body is larger than 4096 bytes"}


async def test_layout_import_allows_a_larger_body_with_a_token(
        client: httpx.AsyncClient, database: str) -> None:
    admin = {"Authorization": f"Bearer {await token(database, TENANT, 'admin')}"}
    big = {"tenant": {"id": TENANT, "name": "Test City"}, "sites": [], "note": "x" * 20_000}
    r = await client.put(f"/v1/admin/{TENANT}/layout", json=big, headers=admin)
    assert r.status_code == 422, r.text  # read and validated ("note" is not a key), not a 413
    assert r.json()["detail"][0]["loc"] == ["body"]
    r = await client.put(f"/v1/admin/{TENANT}/layout", json=big)
    assert r.status_code == 413  # the larger limit is for requests that carry a token


async def test_rate_limits_on_admin_manage_and_metrics(database: str) -> None:
    await seed_city(database)
    admin = {"Authorization": f"Bearer {await token(database, TENANT, 'admin')}"}
    limits = {"rate_limit_per_s": 1, "rate_limit_burst": 100, "admin_rate": {"per_s": 0.1, "burst": 3},
              "manage_rate": {"per_s": 0.1, "burst": 2}, "ops_rate": {"per_s": 0.1, "burst": 2}}
    async with asgi_client(app_for(database, **limits)) as c:
        for path, burst, headers in ((f"/v1/admin/{TENANT}/audit", 3, admin),
                                     (f"/v1/manage/{TENANT}/alerts", 2, admin), ("/metrics", 2, {})):
            statuses = [(await c.get(path, headers=headers)).status_code for _ in range(burst + 1)]
            assert statuses == [200] * burst + [429], (path, statuses)
            r = await c.get(path, headers=headers)
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            assert "too many requests" in r.json()["detail"]
        assert (await c.get("/v1/sites")).status_code == 200  # each class has its own bucket


async def test_auth_failures_are_rate_limited(database: str) -> None:
    await seed_city(database)
    good = {"Authorization": f"Bearer {await token(database, TENANT, 'admin')}"}
    limits = {"rate_limit_per_s": 100, "rate_limit_burst": 1000,
              "auth_failure_rate": {"per_s": 0.01, "burst": 5}}
    async with asgi_client(app_for(database, **limits)) as c:
        path = f"/v1/manage/{TENANT}/alerts"
        guesses = [(await c.get(path, headers={"Authorization": f"Bearer pbz_guess{i}"})).status_code
                   for i in range(5)]
        assert guesses == [401] * 5
        r = await c.get(path, headers=good)  # even a good token: this address guessed too often
        assert r.status_code == 429 and "failed authentications" in r.json()["detail"]
        assert int(r.headers["retry-after"]) >= 1
        assert (await c.get("/v1/sites")).status_code == 200  # public reads are not guarded


async def _lock_events(dsn: str) -> asyncpg.Connection:
    """A connection holding an exclusive lock on the event table: history reads block on it."""
    con = await asyncpg.connect(dsn)
    await con.execute("BEGIN; LOCK TABLE occupancy_events IN ACCESS EXCLUSIVE MODE")
    return con


async def _blocked_on(lock: asyncpg.Connection, n: int) -> bool:
    """True once ``n`` queries wait for the lock ``lock`` holds on the event table."""
    waiting = await lock.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted "
                                  "AND relation = 'occupancy_events'::regclass")
    return int(waiting) >= n


async def test_slow_history_read_is_cancelled_and_answered_503(database: str) -> None:
    await seed_city(database)
    async with asgi_client(app_for(database, expensive_timeout_s=0.3)) as c:
        lock = await _lock_events(database)
        try:
            t0 = time.monotonic()
            r = await c.get(HISTORY)
            assert time.monotonic() - t0 < 5
        finally:
            await lock.close()
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "2"
        assert r.json()["detail"].startswith("the read took longer than 0.3 s")
        assert "statement" not in r.text and "canceling" not in r.text
        assert (await c.get(HISTORY)).status_code == 200  # the connection went back clean


async def test_expensive_reads_cannot_take_the_pool_from_site_reads(database: str) -> None:
    """Thirty different history reads at once while their table is locked (no per-client
    cap in the way): two hold the bulkhead's
    slots, the rest wait a moment and get 503 + Retry-After; meanwhile every public site read
    (uncached) is answered at once from the connections the bulkhead leaves."""
    await seed_city(database)
    app = app_for(database, expensive_concurrency=2, expensive_wait_s=0.5, expensive_timeout_s=10,
                  pool_size=4, expensive_per_client=30)
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as c:
        lock = await _lock_events(database)
        try:
            history = [asyncio.create_task(c.get(f"{HISTORY}&from={_from(i)}")) for i in range(30)]
            await wait_until(lambda: _blocked_on(lock, 2), 10, "two history reads in their slots")
            t0 = time.monotonic()
            sites = [await c.get(f"/v1/sites/{TENANT}/lot-a") for _ in range(20)]
            site_s = time.monotonic() - t0
            done, _ = await asyncio.wait(history, timeout=5)  # all but the two that hold a slot
            busy = [t.result() for t in done]
        finally:
            await lock.close()
        held = [await t for t in history if t not in done]
    assert all(r.status_code == 200 for r in sites) and site_s < 2.0, site_s
    assert len(busy) == 28 and {r.status_code for r in busy} == {503}
    assert all(r.headers["retry-after"] == "2" and "expensive read" in r.json()["detail"] for r in busy)
    assert [r.status_code for r in held] == [200, 200]


def _from(minutes_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=1, minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_address(base: str, address: str) -> httpx.AsyncClient:
    """A client whose requests come from another loopback address (to 127.0.0.1 still)."""
    return httpx.AsyncClient(base_url=base, timeout=30,
                             transport=httpx.AsyncHTTPTransport(local_address=address))


async def test_one_address_flooding_history_cannot_fail_another_address(database: str) -> None:
    """Fifty different history reads at once from one address while their table is locked:
    it keeps one in progress and four waiting, the rest are refused at once; a single read
    from another address meanwhile takes a slot of its own and is answered 200."""
    await seed_city(database)
    app = app_for(database, expensive_concurrency=2, expensive_wait_s=0.5, expensive_timeout_s=10,
                  pool_size=4, expensive_per_client=1, expensive_client_queue=4)
    async with served(app) as base, _from_address(base, "127.0.0.1") as flood, \
            _from_address(base, "127.0.0.2") as other:
        lock = await _lock_events(database)
        try:
            floods = [asyncio.create_task(flood.get(f"{HISTORY}&from={_from(i)}")) for i in range(50)]

            async def all_arrived() -> bool:  # every flood read is in progress, waiting or refused
                return sum(app.state.gates.load("address 127.0.0.1")) + sum(t.done() for t in floods) == 50

            await wait_until(all_arrived, 10)
            mine = asyncio.create_task(other.get(f"{HISTORY}&from={_from(100)}"))  # a read of its own

            async def mine_arrived() -> bool:
                return app.state.gates.load("address 127.0.0.2") == (1, 0) or mine.done()

            await wait_until(mine_arrived, 10)
            done, _ = await asyncio.wait(floods, timeout=5)  # all but the one in progress
            refused = [t.result() for t in done]
            assert not mine.done()  # it holds the other slot, behind the lock like the flood's one
        finally:
            await lock.close()
        held = [await t for t in floods if t not in done]
        answer = await mine
    assert answer.status_code == 200, answer.text
    assert len(refused) == 49 and {r.status_code for r in refused} == {503}
    at_once = [r for r in refused if "already has 1 expensive reads in progress and 4 waiting" in r.text]
    waited = [r for r in refused if "did not finish within 0.5 s" in r.text]
    assert (len(at_once), len(waited)) == (45, 4), [r.text for r in refused][:3]
    assert all(r.headers["retry-after"] == "2" for r in refused)
    assert [r.status_code for r in held] == [200]


async def test_identical_history_reads_share_one_query(database: str) -> None:
    """One history asked by twenty readers while its table is locked — eleven addresses, one
    of them asking nine times at once — is answered 200 to all of them from two queries: the
    one in progress when the others came, and the next one they all share (sharing a query
    takes no place of the client's, so the address asking nine times is not turned away)."""
    await seed_city(database)
    app = app_for(database, expensive_concurrency=2, expensive_wait_s=0.5, expensive_timeout_s=10,
                  pool_size=4)
    url = f"{HISTORY}&from={_from(0)}"

    def count(result: str) -> float:
        return REGISTRY.get_sample_value("parkbazaar_api_expensive_reads_total", {"result": result}) or 0.0

    def counted(result: str, at_least: float) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return count(result) >= at_least
        return check

    async with served(app) as base, contextlib.AsyncExitStack() as stack:
        one = await stack.enter_async_context(_from_address(base, "127.0.0.2"))
        clients = [await stack.enter_async_context(_from_address(base, f"127.0.0.{i + 3}"))
                   for i in range(11)] + [one] * 9
        queries, shared = count("query"), count("shared")
        lock = await _lock_events(database)
        try:
            first = asyncio.create_task(clients[0].get(url))
            await wait_until(counted("query", queries + 1), 10)  # in progress, on the lock
            rest = [asyncio.create_task(c.get(url)) for c in clients[1:]]
            await wait_until(counted("shared", shared + 18), 10)  # the others boarded the next one
        finally:
            await lock.close()
        answers = [await first, *[await t for t in rest]]
    assert {r.status_code for r in answers} == {200}
    assert count("query") - queries == 2 and count("shared") - shared == 18
    assert len({r.content for r in answers[1:]}) == 1  # the shared query's bytes, to every reader


async def test_manager_reports_are_capped_per_token_not_per_address(database: str) -> None:
    """Two managers' tokens from one address: the first token's second report while its first
    is in progress is refused at once; the other token's report is not behind it (200)."""
    await seed_city(database)
    first = {"Authorization": f"Bearer {await token(database, TENANT, 'manager', 'market')}"}
    second = {"Authorization": f"Bearer {await token(database, TENANT, 'manager', 'market')}"}
    app = app_for(database, expensive_concurrency=2, expensive_wait_s=0.5, expensive_timeout_s=10,
                  pool_size=4, expensive_per_client=1, expensive_client_queue=0)
    report = f"/v1/manage/{TENANT}/sites/market/utilization"

    def tokens_in_progress(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(app.state.gates._gates) == n
        return check

    async with asgi_client(app) as c:
        lock = await _lock_events(database)
        try:
            running = asyncio.create_task(c.get(report, headers=first))
            await wait_until(tokens_in_progress(1), 10)
            again = await c.get(f"{report}?from=2026-01-01&to=2026-01-02", headers=first)
            other = asyncio.create_task(c.get(report, headers=second))
            await wait_until(tokens_in_progress(2), 10)  # in progress, not refused
        finally:
            await lock.close()
        answers = [await running, await other]
    assert again.status_code == 503 and "already has 1 expensive reads in progress" in again.text
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
