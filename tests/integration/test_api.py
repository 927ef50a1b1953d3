"""The dashboard API against real PostgreSQL: counts, distances, zones, spaces, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from dashboard_api.app import create_app
from dashboard_api.deps import parse_near, utcnow
from dashboard_api.provision import provision
from ingest.migrate import migrate
from occupancy.config import Settings
from occupancy.sitefile import parse_site_file
from tests.support.database import scratch_database

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ORIGIN = "29.6,52.5"

SITE_FILE: dict[str, Any] = {
    "tenant": {"id": "testcity", "name": "Test City", "name_fa": "شهر آزمون"},
    "sites": [
        {"id": "lot-a", "kind": "parking", "name": "Lot A", "name_fa": "پارکینگ الف",
         "lat": 29.6, "lon": 52.5, "stale_after_s": 600, "address": "1 Main St",
         "opening_hours": {"open": "06:00", "close": "23:00"},
         "zones": [
             {"id": "Z1", "name": "Level 1", "spaces": ["a1", "a2", "a3", "a4"],
              "attributes": {"a1": {"disabled": True}}},
             {"id": "Z2", "name": "Level 2", "name_fa": "طبقه ۲", "spaces": ["b1", "b2"]},
         ]},
        {"id": "lot-b", "kind": "parking", "name": "Lot B", "lat": 29.609, "lon": 52.5,
         "zones": [{"id": "main", "spaces": ["x1", "x2"]}]},
        {"id": "market-c", "kind": "market", "name": "Market C", "lat": 29.6, "lon": 52.531,
         "zones": [{"id": "hall", "spaces": {"prefix": "stall-", "count": 3}}]},
        {"id": "far-lot", "kind": "parking", "name": "Far Lot", "lat": 29.78, "lon": 52.5,
         "zones": [{"id": "main", "spaces": ["f1"]}]},
    ],
    "gateways": [
        {"id": "gw-1", "sites": ["lot-a", "lot-b", "market-c", "far-lot"]},
        {"id": "gw-2", "spaces": ["lot-a/b1", "lot-a/b2"]},
    ],
}


async def _observe(
    db: asyncpg.Connection, site: str, space: str, state: str, age_s: float, gateway: str = "gw-1"
) -> None:
    await db.execute(
        """INSERT INTO space_state (space_id, state, observed_at, source, gateway_id, seq, changed_at)
           SELECT sp.id, $3, $4, 'sensor', g.id, 1, $4
           FROM spaces sp JOIN sites si ON si.id = sp.site_id, gateways g
           WHERE si.slug = $1 AND sp.slug = $2 AND g.slug = $5""",
        site, space, state, NOW - timedelta(seconds=age_s), gateway,
    )


async def _seed(db: asyncpg.Connection) -> None:
    """The test city provisioned, with observations covering every counting case."""
    await migrate(db, flavor="plain")
    await provision(db, parse_site_file(SITE_FILE))
    await _observe(db, "lot-a", "a1", "free", 30)  # gw-1 never sent a status: still trusted
    await _observe(db, "lot-a", "a2", "occupied", 10)
    await _observe(db, "lot-a", "a3", "free", 700)  # older than stale_after_s=600: unknown
    # a4: never observed: unknown
    await _observe(db, "lot-a", "b1", "occupied", 120, "gw-2")  # gw-2 died after this: unknown
    await _observe(db, "lot-a", "b2", "free", 5, "gw-2")  # observed after the death (reconnected)
    await db.execute(
        "UPDATE gateways SET online = false, status_at = $1 WHERE slug = 'gw-2'",
        NOW - timedelta(seconds=60),
    )
    await _observe(db, "lot-b", "x1", "free", 3600)  # the site's only observation, stale


@pytest.fixture(scope="module")
def seeded_database(pg_admin_dsn: str) -> Iterator[str]:
    """One seeded database shared by this module's read-only tests (they never write)."""

    async def seed(dsn: str) -> None:
        con = await asyncpg.connect(dsn)
        try:
            await _seed(con)
        finally:
            await con.close()

    with scratch_database(pg_admin_dsn, "pbt_api") as dsn:
        asyncio.run(seed(dsn))
        yield dsn


def _app(database: str) -> FastAPI:
    app = create_app(Settings(database_url=database))
    app.dependency_overrides[utcnow] = lambda: NOW
    return app


@pytest.fixture
async def client(seeded_database: str) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(seeded_database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
            yield c


def _counts(body: dict[str, Any]) -> tuple[int, int, int, int]:
    return body["total"], body["free"], body["occupied"], body["unknown"]


async def test_sites_near_sorted_by_distance(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/sites", params={"near": ORIGIN})
    assert r.status_code == 200
    body = r.json()
    assert [s["site"] for s in body] == ["lot-a", "lot-b", "market-c"]  # far-lot: ~20 km
    assert [round(s["distance_m"] / 10) * 10 for s in body] == [0, 1000, 3000]
    assert body[0]["name_fa"] == "پارکینگ الف"
    assert body[0]["timezone"] == "Asia/Tehran"


async def test_radius_and_kind_filter(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/sites", params={"near": ORIGIN, "radius_m": 1500})
    assert [s["site"] for s in r.json()] == ["lot-a", "lot-b"]
    r = await client.get("/v1/sites", params={"near": ORIGIN, "kind": "market"})
    assert [s["site"] for s in r.json()] == ["market-c"]
    r = await client.get("/v1/sites", params={"near": ORIGIN, "radius_m": 100_000})
    assert [s["site"] for s in r.json()] == ["lot-a", "lot-b", "market-c", "far-lot"]


async def test_without_near_every_site_by_name(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/sites")).json()
    assert [s["site"] for s in body] == ["far-lot", "lot-a", "lot-b", "market-c"]
    assert {s["distance_m"] for s in body} == {None}


async def test_counting_rule(client: httpx.AsyncClient) -> None:
    by_site = {s["site"]: s for s in (await client.get("/v1/sites")).json()}
    lot_a = by_site["lot-a"]
    # free: a1, b2; occupied: a2; unknown: a3 (stale), a4 (never), b1 (gateway died after)
    assert _counts(lot_a) == (6, 2, 1, 3)
    assert lot_a["updated_at"] == (NOW - timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    assert lot_a["stale"] is False
    assert _counts(by_site["lot-b"]) == (2, 0, 0, 2)
    assert by_site["lot-b"]["stale"] is True
    assert _counts(by_site["market-c"]) == (3, 0, 0, 3)
    assert by_site["market-c"]["updated_at"] is None
    assert by_site["market-c"]["stale"] is None


async def test_one_site_with_zones(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/sites/testcity/lot-a")
    assert r.status_code == 200
    body = r.json()
    assert _counts(body) == (6, 2, 1, 3)
    assert body["address"] == "1 Main St"
    assert body["opening_hours"]["close"] == "23:00"
    assert body["stale_after_s"] == 600
    assert body["distance_m"] is None
    zones = {z["zone"]: z for z in body["zones"]}
    assert _counts(zones["Z1"]) == (4, 1, 1, 2)
    assert _counts(zones["Z2"]) == (2, 1, 0, 1)
    assert zones["Z2"]["name_fa"] == "طبقه ۲"


async def test_spaces_of_a_site(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/sites/testcity/lot-a/spaces")
    assert r.status_code == 200
    spaces = {s["space"]: s for s in r.json()}
    assert list(spaces) == ["a1", "a2", "a3", "a4", "b1", "b2"]
    assert {k: s["state"] for k, s in spaces.items()} == {
        "a1": "free", "a2": "occupied", "a3": "unknown", "a4": "unknown",
        "b1": "unknown", "b2": "free",
    }
    assert spaces["a1"]["attributes"] == {"disabled": True}
    assert spaces["a1"]["zone"] == "Z1"
    assert spaces["a1"]["source"] == "sensor"
    assert spaces["a3"]["stale"] is True
    assert spaces["a4"]["stale"] is None
    assert spaces["a4"]["observed_at"] is None


@pytest.mark.parametrize(
    "path",
    ["/v1/sites/testcity/nope", "/v1/sites/nobody/lot-a", "/v1/sites/testcity/nope/spaces"],
)
async def test_unknown_site_is_404(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert "no site" in r.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"near": "29.6"}, "near", "LAT,LON"),
        ({"near": "abc,def"}, "near", "decimal numbers"),
        ({"near": "95,52"}, "near", "latitude"),
        ({"near": "29,200"}, "near", "longitude"),
        ({"near": ORIGIN, "radius_m": "0"}, "radius_m", "greater than 0"),
        ({"near": ORIGIN, "radius_m": "100001"}, "radius_m", "less than or equal to 100000"),
        ({"kind": "bazaar"}, "kind", "'parking' or 'market'"),
    ],
)
async def test_bad_query_is_422(
    client: httpx.AsyncClient, params: dict[str, str], field: str, message: str
) -> None:
    r = await client.get("/v1/sites", params=params)
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == ["query", field]
    assert message in error["msg"]


async def test_every_bad_parameter_is_named(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/sites", params={"near": "95,1", "kind": "bazaar", "radius_m": "-1"})
    assert r.status_code == 422
    assert sorted(e["loc"][1] for e in r.json()["detail"]) == ["kind", "near", "radius_m"]


def test_parse_near() -> None:
    assert parse_near(" 29.61 , 52.54 ") == (29.61, 52.54)
    for bad in ("", "1,2,3", "nan,1", "1,inf"):
        with pytest.raises(ValueError, match="near"):
            parse_near(bad)


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "reason": None}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


async def test_not_ready_on_an_unmigrated_database(empty_database: str) -> None:
    app = _app(empty_database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert "parkbazaar migrate" in r.json()["reason"]
            assert (await c.get("/healthz")).status_code == 200


async def test_database_gone_is_503(seeded_database: str) -> None:
    app = _app(seeded_database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
            app.state.pool.terminate()
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert "database unavailable" in r.json()["reason"]
            r = await c.get("/v1/sites")
            assert r.status_code == 503
            assert (await c.get("/healthz")).status_code == 200


async def test_page_docs_and_metrics(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/v1/sites" in page.text
    assert (await client.get("/docs")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/sites/{tenant}/{site}/spaces" in schema["paths"]
    await client.get("/v1/sites/testcity/lot-a")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'route="/v1/sites/{tenant}/{site}",status="200"' in metrics.text
    assert "parkbazaar_api_request_duration_seconds_bucket" in metrics.text


async def test_static_assets_are_served(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page
        assert (await client.get(asset)).status_code == 200
