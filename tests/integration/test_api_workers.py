"""``parkbazaar api --workers 2``: two processes share the port, each with its own cache
and change feed, both fed by the database's NOTIFY; SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil

from stack.embedded import free_port, wait_port
from tests.support.api import TENANT, observe, seed_city
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
STREAMS = 8


async def test_two_workers_serve_reads_and_every_stream_sees_a_change(
        database: str, db: asyncpg.Connection, tmp_path: Path) -> None:
    await seed_city(database)
    port = free_port()
    config = tmp_path / "api.yaml"
    config.write_text(f"database_url: {database}\napi: {{cache_ttl_s: 30, rate_limit_per_s: 0}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKBAZAAR_")}
    proc = subprocess.Popen(  # noqa: ASYNC220 (a server beside this loop, like the bench's)
        [sys.executable, "-m", "parkbazaar", "--config", str(config), "api", "--port", str(port),
         "--workers", "2"], cwd=REPO, env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        await asyncio.to_thread(wait_port, "127.0.0.1", port, 30)
        workers = [w for w in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(w.cmdline())]
        assert len(workers) == 2, "two worker processes"
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            await _until_ready(c)
            streams: list[asyncio.Task[str]] = []
            snapshots: list[str] = []  # a stream's snapshot comes after it subscribed to changes

            async def all_subscribed() -> bool:
                return len(snapshots) == len(streams)

            while len(streams) < 4 * STREAMS and (len(streams) < STREAMS or 0 in _streams_by(workers, port)):
                streams += [asyncio.create_task(_first_change(base, snapshots)) for _ in range(STREAMS)]
                await wait_until(all_subscribed, 15, "every stream's snapshot")
            assert 0 not in _streams_by(workers, port), "both workers hold live streams"
            before = (await c.get(f"/v1/sites/{TENANT}/lot-a")).json()
            await observe(db, "lot-a", "a1", "occupied", datetime.now(UTC) - timedelta(seconds=5), 1)
            changes = await asyncio.wait_for(asyncio.gather(*streams), 15)
            assert all('"space":"a1"' in c and '"state":"occupied"' in c for c in changes)
            for _ in range(10):  # whichever worker answers, its cache saw the change
                after = (await c.get(f"/v1/sites/{TENANT}/lot-a")).json()
                assert after["occupied"] == before["occupied"] + 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(proc.communicate, timeout=30)
    assert proc.returncode == 0, stderr[-2000:]


def _streams_by(workers: list[psutil.Process], port: int) -> list[int]:
    """Established connections to ``port`` that each worker holds."""
    return [sum(1 for k in w.net_connections("tcp") if k.laddr.port == port and k.status == "ESTABLISHED")
            for w in workers]


async def _until_ready(c: httpx.AsyncClient) -> None:
    async def healthy() -> bool:
        try:
            return (await c.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(healthy, 10, "the API answering /healthz")


async def _first_change(base: str, snapshots: list[str]) -> str:
    """Open a live stream (a connection of its own), note its snapshot in ``snapshots``,
    and return its first space change."""
    async with (httpx.AsyncClient(base_url=base, timeout=30) as c,
                c.stream("GET", f"/v1/sites/{TENANT}/lot-a/live") as r):
        assert r.status_code == 200
        event = ""
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
                if event == "snapshot":
                    snapshots.append(base)
            elif line.startswith("data:") and event == "space":
                return line
    raise AssertionError("the stream ended without a change")
