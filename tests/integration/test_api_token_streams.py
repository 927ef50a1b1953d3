"""A revoked or expired token closes its open streams within seconds: the manager's
`/alerts/live` sends a last `closed` event with the reason, and the response ends."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from dashboard_api.routes.manage import ALERTS_POLL_S
from dashboard_api.token_guard import CHECK_S
from tests.support.api import TENANT, app_for, events, seed_city, served, token
from tests.support.waiting import wait_until

LIVE = f"/v1/manage/{TENANT}/alerts/live"
BOUND_S = CHECK_S + 3  # one check period, its query, and slack for a loaded machine


async def test_revoked_token_closes_its_alerts_stream(database: str) -> None:
    await seed_city(database)
    admin = {"Authorization": f"Bearer {await token(database, TENANT, 'admin')}"}
    manager = await token(database, TENANT, "manager", "market")
    async with served(app_for(database)) as base, httpx.AsyncClient(base_url=base, timeout=20) as c:
        async with c.stream("GET", LIVE, headers={"Authorization": f"Bearer {manager}"}) as r:
            assert r.status_code == 200
            stream = events(r)
            assert (await anext(stream))[1] == "alerts"
            revoked = await c.delete(f"/v1/admin/{TENANT}/tokens/2", headers=admin)
            assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
            started = time.monotonic()
            rest = await asyncio.wait_for(_drain(stream), 15)
            took = time.monotonic() - started
        assert rest[-1] == ("closed", {"reason": "revoked"}), rest
        assert took < BOUND_S, took
        again = await c.get(LIVE, headers={"Authorization": f"Bearer {manager}"})
        assert again.status_code == 401


async def test_expiring_token_closes_its_alerts_stream(database: str) -> None:
    await seed_city(database)
    admin = {"Authorization": f"Bearer {await token(database, TENANT, 'admin')}"}
    async with served(app_for(database)) as base, httpx.AsyncClient(base_url=base, timeout=20) as c:
        expires = datetime.now(UTC) + timedelta(seconds=2)
        made = await c.post(f"/v1/admin/{TENANT}/tokens", headers=admin,
                            json={"role": "manager", "expires_at": expires.isoformat()})
        assert made.status_code == 201, made.text
        async with c.stream("GET", LIVE, headers={"Authorization": f"Bearer {made.json()['token']}"}) as r:
            assert r.status_code == 200
            stream = events(r)
            assert (await anext(stream))[1] == "alerts"
            rest = await asyncio.wait_for(_drain(stream), 15)
            ended = datetime.now(UTC)
        assert rest[-1] == ("closed", {"reason": "expired"}), rest
        assert timedelta(0) <= ended - expires < timedelta(seconds=BOUND_S), ended - expires


async def _drain(stream: Any) -> list[tuple[str, Any]]:
    """(event, data) of every message until the server ends the response."""
    return [(kind, data) async for _, kind, data in stream]


async def test_a_client_that_leaves_leaves_no_stream_task(database: str) -> None:
    await seed_city(database)
    manager = await token(database, TENANT, "manager", "market")
    async with served(app_for(database)) as base, httpx.AsyncClient(base_url=base, timeout=20) as c:
        async with c.stream("GET", LIVE, headers={"Authorization": f"Bearer {manager}"}) as r:
            assert (await anext(events(r)))[1] == "alerts"
            assert _stream_tasks() == 1
        # well before the alerts loop would wake up and notice the client is gone by itself
        await wait_until(_none_left, ALERTS_POLL_S / 2, "the stream's task ending with its client")


async def _none_left() -> bool:
    return _stream_tasks() == 0


def _stream_tasks() -> int:
    """Guarded stream generators running in this loop (the server shares it)."""
    return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("stream-of-token-"))
