"""What the API refuses before it reads, on a real PostgreSQL: huge bodies (413, memory
flat), floods on every class of route and token guessing (429 with Retry-After), and
expensive reads bounded in time (statement timeout → 503) and in concurrency (a
bulkhead: public reads keep their connections while history reads pile up)."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

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
    """Thirty history reads at once while their table is locked: two hold the bulkhead's
    slots, the rest wait a moment and get 503 + Retry-After; meanwhile every public site read
    (uncached) is answered at once from the connections the bulkhead leaves."""
    await seed_city(database)
    app = app_for(database, expensive_concurrency=2, expensive_wait_s=0.5, expensive_timeout_s=10,
                  pool_size=4)
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as c:
        lock = await _lock_events(database)
        try:
            history = [asyncio.create_task(c.get(HISTORY)) for _ in range(30)]
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
