"""API clients of the tests: a provisioned test city, tokens, the app in this process
(ASGI) or served by uvicorn, events written as ingest writes them, and an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from dashboard_api.app import create_app
from dashboard_api.auth import Role, create_token
from dashboard_api.provision import provision
from occupancy.config import Settings
from occupancy.sitefile import parse_site_file
from stack.embedded import free_port
from tests.support.waiting import wait_until

TENANT, OTHER = "testcity", "othercity"
SITE_FILE: dict[str, Any] = {
    "tenant": {"id": TENANT, "name": "Test City", "timezone": "Asia/Tehran"},
    "sites": [
        {
            "id": "lot-a",
            "kind": "parking",
            "name": "Lot A",
            "name_fa": "پارکینگ الف",
            "lat": 29.6,
            "lon": 52.5,
            "stale_after_s": 600,
            "address": "1 Main St",
            "opening_hours": {"open": "06:00", "close": "23:00"},
            "zones": [{"id": "Z1", "name": "Level 1", "spaces": ["a1", "a2", "a3", "a4"]}],
            "devices": [{"id": "s-a1", "kind": "sensor", "spaces": ["a1"]}],
        },
        {
            "id": "market",
            "kind": "market",
            "name": "Market",
            "lat": 29.61,
            "lon": 52.51,
            "stale_after_s": 1800,
            "opening_hours": {"open": "07:00", "close": "21:00", "closed_days": ["friday"]},
            "zones": [
                {
                    "id": "hall",
                    "spaces": {"prefix": "stall-", "count": 3},
                    "attributes": {"stall-001": {"vendor": "Karimi", "category": "citrus"}},
                }
            ],
        },
    ],
    "gateways": [{"id": "gw-1", "sites": ["lot-a", "market"]}],
}
OTHER_FILE: dict[str, Any] = {
    "tenant": {"id": OTHER, "name": "Other City"},
    "sites": [
        {
            "id": "lot-z",
            "kind": "parking",
            "name": "Lot Z",
            "lat": 30.0,
            "lon": 53.0,
            "zones": [{"id": "main", "spaces": ["z1"]}],
        }
    ],
}


async def seed_city(dsn: str) -> None:
    con = await asyncpg.connect(dsn)
    try:
        await provision(con, parse_site_file(SITE_FILE))
        await provision(con, parse_site_file(OTHER_FILE))
    finally:
        await con.close()


async def token(dsn: str, tenant: str, role: Role, *sites: str) -> str:
    con = await asyncpg.connect(dsn)
    try:
        return await create_token(con, tenant=tenant, role=role, sites=sites, actor="test")
    finally:
        await con.close()


def app_for(dsn: str, **api: Any) -> FastAPI:
    return create_app(Settings(database_url=dsn, api={"cache_ttl_s": 0, "rate_limit_per_s": 0, **api}))


@contextlib.asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
            yield c


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app on a real uvicorn server of this event loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()  # raises what stopped it
        return bool(server.started)

    await wait_until(started, 30, "uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def observe(
    con: asyncpg.Connection, site: str, space: str, state: str, at: Any, seq: int, *, notify: bool = True
) -> None:
    """Write an event and the space's state as ingest does, then NOTIFY like ingest (one transaction)."""
    async with con.transaction():
        row = await con.fetchrow(
            """SELECT sp.id, sp.site_id, g.id AS gw FROM spaces sp JOIN sites si ON si.id = sp.site_id,
                      gateways g WHERE si.slug = $1 AND sp.slug = $2 AND g.slug = 'gw-1'""",
            site,
            space,
        )
        await con.execute(
            "SELECT ensure_event_partitions(($1::timestamptz AT TIME ZONE 'UTC')::date,"
            " ($1::timestamptz AT TIME ZONE 'UTC')::date)",
            at,
        )
        await con.execute(
            "INSERT INTO occupancy_events (observed_at, gateway_id, seq, space_id, state, source) "
            "VALUES ($1, $2, $3, $4, $5, 'sensor')",
            at,
            row["gw"],
            seq,
            row["id"],
            state,
        )
        await con.execute(
            """INSERT INTO space_state AS s
                   (space_id, state, observed_at, source, gateway_id, seq, changed_at)
               VALUES ($1, $2, $3, 'sensor', $4, $5, $3)
               ON CONFLICT (space_id) DO UPDATE SET state = EXCLUDED.state,
                   observed_at = EXCLUDED.observed_at, seq = EXCLUDED.seq, changed_at = EXCLUDED.changed_at
               WHERE (s.observed_at, s.seq) < (EXCLUDED.observed_at, EXCLUDED.seq)""",
            row["id"],
            state,
            at,
            row["gw"],
            seq,
        )
        if notify:
            change = {
                "space_id": row["id"],
                "site_id": row["site_id"],
                "state": state,
                "observed_at": at.isoformat(),
            }
            payload = json.dumps({"v": 1, "changes": [change]})
            await con.execute("SELECT pg_notify('parkbazaar_changes', $1)", payload)


async def events(response: httpx.Response) -> AsyncIterator[tuple[str | None, str, Any]]:
    """(id, event, data) of each SSE message."""
    event_id, kind, data = None, "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event_id, kind, json.loads("\n".join(data))
            kind, data = "message", []
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
