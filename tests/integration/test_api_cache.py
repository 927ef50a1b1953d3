"""The response cache of the hot public reads against a real database: hits answered
before routing (same body, ETag, 304, metrics by route, rate limited), a committed
change seen through the live feed, per-query keys, errors never cached."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from prometheus_client import REGISTRY

from tests.support.api import TENANT, app_for, asgi_client, observe, seed_city
from tests.support.waiting import wait_until

SITE = f"/v1/sites/{TENANT}/lot-a"


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("parkbazaar_api_cache_lookups_total", {"result": result}) or 0.0


def served(route: str) -> float:
    labels = {"method": "GET", "route": route, "status": "200"}
    return REGISTRY.get_sample_value("parkbazaar_api_requests_total", labels) or 0.0


async def test_hits_are_answered_from_the_cache_until_a_change(database: str, db: asyncpg.Connection) -> None:
    await seed_city(database)
    await observe(db, "lot-a", "a1", "free", datetime.now(UTC) - timedelta(seconds=30), 1)
    async with asgi_client(app_for(database, cache_ttl_s=60)) as c:
        misses, hits = lookups("miss"), lookups("hit")
        first = await c.get(SITE)
        assert first.status_code == 200 and lookups("miss") == misses + 1
        routed = served("/v1/sites/{tenant}/{site}")
        second = await c.get(SITE)
        assert lookups("hit") == hits + 1 and lookups("miss") == misses + 1
        assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
        assert second.headers["cache-control"] == "public, max-age=2"
        assert second.headers["content-type"] == "application/json"
        assert served("/v1/sites/{tenant}/{site}") == routed + 1  # counted under its route
        r = await c.get(SITE, headers={"If-None-Match": first.headers["etag"]})
        assert r.status_code == 304 and not r.content and r.headers["etag"] == first.headers["etag"]

        # ingest commits a change and its NOTIFY: the next read shows it, not the cached body
        await observe(db, "lot-a", "a2", "occupied", datetime.now(UTC) - timedelta(seconds=5), 2)
        counts = await _wait_for(c, lambda body: body["occupied"] == 1)
        assert counts["free"] == 1 and lookups("miss") >= misses + 2


async def test_each_query_string_has_its_own_entry(database: str) -> None:
    await seed_city(database)
    async with asgi_client(app_for(database, cache_ttl_s=60)) as c:
        parking = await c.get("/v1/sites", params={"kind": "parking"})
        markets = await c.get("/v1/sites", params={"kind": "market"})
        assert {s["kind"] for s in parking.json()} == {"parking"}
        assert {s["kind"] for s in markets.json()} == {"market"}
        hits = lookups("hit")
        again = await c.get("/v1/sites", params={"kind": "parking"})
        assert again.content == parking.content and lookups("hit") == hits + 1


async def test_errors_are_not_cached_and_other_methods_pass_through(database: str) -> None:
    await seed_city(database)
    async with asgi_client(app_for(database, cache_ttl_s=60)) as c:
        misses = lookups("miss")
        for _ in range(2):
            r = await c.get(f"/v1/sites/{TENANT}/no-such-site")
            assert r.status_code == 404 and "no-such-site" in r.json()["detail"]
        assert lookups("miss") == misses + 2
        assert (await c.get(SITE)).status_code == 200
        assert (await c.post(SITE)).status_code == 405  # the cached path still routes a POST
        r = await c.get(f"/v1/sites/{TENANT}/lot-a/history", params={"step": "1h"})  # never cached
        assert r.status_code == 200 and lookups("miss") == misses + 3


async def test_spaces_and_ngsi_entities_are_cached_with_their_headers(
        database: str, db: asyncpg.Connection) -> None:
    await seed_city(database)
    await observe(db, "lot-a", "a1", "free", datetime.now(UTC) - timedelta(seconds=30), 1)
    async with asgi_client(app_for(database, cache_ttl_s=60)) as c:
        spaces = f"{SITE}/spaces"
        first = await c.get(spaces)
        hits = lookups("hit")
        again = await c.get(spaces)
        assert again.content == first.content and lookups("hit") == hits + 1
        assert [s["state"] for s in again.json()] == ["free", "unknown", "unknown", "unknown"]
        await observe(db, "lot-a", "a3", "occupied", datetime.now(UTC) - timedelta(seconds=5), 2)

        async def a3_occupied() -> bool:
            return bool((await c.get(spaces)).json()[2]["state"] == "occupied")

        await wait_until(a3_occupied, 10, "the change reaching /spaces")

        params = {"type": "OffStreetParking", "options": "keyValues"}
        first = await c.get("/ngsi-ld/v1/entities", params=params)
        hits = lookups("hit")
        again = await c.get("/ngsi-ld/v1/entities", params=params)
        assert lookups("hit") == hits + 1 and again.content == first.content
        for r in (first, again):
            assert r.headers["link"].startswith("<") and 'rel="http://www.w3.org/ns/json-ld#context"' in (
                r.headers["link"])
            assert r.headers["content-type"] == "application/json"
        etag = {"If-None-Match": first.headers["etag"]}
        r = await c.get("/ngsi-ld/v1/entities", params=params, headers=etag)
        assert r.status_code == 304 and "link" in r.headers
        bad = await c.get("/ngsi-ld/v1/entities", params={"options": "keyValues"})
        assert bad.status_code == 400 and "type is required" in bad.json()["title"]


async def test_cache_hits_are_rate_limited(database: str) -> None:
    await seed_city(database)
    async with asgi_client(app_for(database, cache_ttl_s=60, rate_limit_per_s=1, rate_limit_burst=3)) as c:
        statuses = [(await c.get(SITE)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


async def _wait_for(c: httpx.AsyncClient, done: Callable[[dict[str, object]], bool],
                    timeout_s: float = 10.0) -> dict[str, object]:
    body: dict[str, object] = {}

    async def seen() -> bool:
        nonlocal body
        body = (await c.get(SITE)).json()
        return done(body)

    await wait_until(seen, timeout_s, lambda: f"the change (last body {body})")
    return body
