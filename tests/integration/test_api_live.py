"""The live stream: snapshot, changes fed by NOTIFY, resume with Last-Event-ID without a
gap, a transaction that commits late, and the fallback read without NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.support.api import TENANT, app_for, events, observe, seed_city, served

URL = f"/v1/sites/{TENANT}/lot-a/live"


async def until_space(
    stream: AsyncIterator[tuple[str | None, str, Any]], want: set[tuple[str, str]], timeout: float = 10
) -> str | None:
    """Read until every (space, state) was seen and a counts event followed; the last id."""
    last = None

    async def run() -> None:
        nonlocal last
        seen: set[tuple[str, str]] = set()
        async for event_id, kind, data in stream:
            last = event_id
            if kind == "space":
                seen.add((data["space"], data["state"]))
            if kind == "counts" and want <= seen:
                return

    await asyncio.wait_for(run(), timeout)
    return last


async def test_snapshot_changes_and_resume(database: str, db: asyncpg.Connection) -> None:
    await seed_city(database)
    now = datetime.now(UTC).replace(microsecond=0)
    async with served(app_for(database)) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
        async with c.stream("GET", URL) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            stream = events(r)
            first_id, kind, snap = await anext(stream)
            assert kind == "snapshot" and first_id and snap["site"]["total"] == 4
            assert {s["space"] for s in snap["spaces"]} == {"a1", "a2", "a3", "a4"}
            await observe(db, "lot-a", "a1", "occupied", now - timedelta(seconds=30), 1)
            last = await until_space(stream, {("a1", "occupied")})
        assert last is not None

        # while the client is away: two changes, one of them by a transaction that commits late
        late = await asyncpg.connect(database)
        tx = late.transaction()
        await tx.start()
        await observe(late, "lot-a", "a4", "free", now - timedelta(seconds=20), 2, notify=False)
        await observe(db, "lot-a", "a2", "free", now - timedelta(seconds=10), 3)

        async with c.stream("GET", URL, headers={"Last-Event-ID": last}) as r:
            stream = events(r)
            _, kind, data = await anext(stream)
            assert kind == "space" and data["space"] == "a2"  # no snapshot: what changed since
            await until_space(stream, set())
            await tx.commit()
            await late.execute("SELECT pg_notify('parkbazaar_changes', '{\"v\":1,\"changes\":[]}')")
            last = await until_space(stream, {("a4", "free")})
        await late.close()

        # without any NOTIFY the feed still finds the change by its periodic read
        async with c.stream("GET", URL, headers={"Last-Event-ID": last or ""}) as r:
            stream = events(r)
            await until_space(stream, set())
            await observe(db, "lot-a", "a3", "occupied", now - timedelta(seconds=5), 4, notify=False)
            await until_space(stream, {("a3", "occupied")}, timeout=8)


async def test_live_of_unknown_site_is_404(database: str) -> None:
    await seed_city(database)
    async with served(app_for(database)) as base, httpx.AsyncClient(base_url=base) as c:
        r = await c.get(f"/v1/sites/{TENANT}/nope/live")
        assert r.status_code == 404
