"""Every input an attacker tried answers 4xx with a message, never 500, and no answer
carries the database's text (real PostgreSQL, the test city of api_support)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dashboard_api.deps import Connection
from tests.support.api import TENANT, app_for, asgi_client, seed_city, token

PATH_VALUES = {"tenant": TENANT, "site": "market", "zone": "hall", "space": "stall-001", "gateway": "gw-1",
               "device": "s-a1", "entity_id": f"urn:ngsi-ld:OffStreetParking:{TENANT}:lot-a",
               "token_id": "1", "version": "1"}
DATABASE_TEXT = re.compile(r"asyncpg|postgres|Key \(|violates|constraint|invalid byte|SQL|relation ",
                           re.IGNORECASE)
JSON = {"Content-Type": "application/json"}
AdminClient = tuple[httpx.AsyncClient, dict[str, str], FastAPI]


@pytest.fixture
async def admin(database: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], FastAPI]]:
    await seed_city(database)
    app = app_for(database)
    headers = {"Authorization": f"Bearer {await token(database, TENANT, 'admin')}"}
    async with asgi_client(app) as c:
        yield c, headers, app


def _operations(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """(method, path template, its path parameters) of every documented operation but streams."""
    out = []
    for template, ops in app.openapi()["paths"].items():
        params = re.findall(r"\{(\w+)\}", template)
        out += [(m.upper(), template, params) for m in ops if params and not template.endswith("/live")]
    return out


def _fill(template: str, name: str, bad: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: bad if m.group(1) == name else PATH_VALUES[m.group(1)], template)


def _refused(r: httpx.Response) -> None:
    assert 400 <= r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text)
    assert not DATABASE_TEXT.search(r.text), r.text
    assert r.text, "a message says why"


async def _each_path_parameter(admin: AdminClient, bad: str) -> int:
    c, headers, app = admin
    tried = 0
    for method, template, params in _operations(app):
        for name in params:
            r = await c.request(method, _fill(template, name, bad), headers={**headers, **JSON}, content="{}")
            _refused(r)
            tried += 1
    return tried


async def test_nul_byte_in_path_is_4xx(admin: AdminClient) -> None:
    assert await _each_path_parameter(admin, "lot%00a") >= 50


async def test_non_ascii_digit_id_is_4xx(admin: AdminClient) -> None:
    """``²`` and ``٣`` are digits to ``str.isdigit`` and ``\\d``; no id pattern takes them."""
    assert await _each_path_parameter(admin, "%C2%B2") >= 50
    assert await _each_path_parameter(admin, "%D9%A3") >= 50


async def test_history_times_and_steps_out_of_range_are_4xx(
        admin: AdminClient) -> None:
    c, _, _ = admin
    base = f"/v1/sites/{TENANT}/lot-a/history"
    for query, where in (("to=0001-01-01T00:00:00Z", "to"), ("from=9999-12-31T23:59:59-01:00", "from"),
                         ("to=2026-01-01T00:00:00", "to"), ("step=999999d", "step"),
                         ("step=%D9%A3m", "step"), ("step=1s&from=2026-01-01T00:00:00Z", "step")):
        r = await c.get(f"{base}?{query}")
        _refused(r)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", where], (query, r.text)


async def test_manager_dates_in_year_1_and_9999_are_4xx(
        admin: AdminClient) -> None:
    c, headers, _ = admin
    site = f"/v1/manage/{TENANT}/sites/market"
    for path in (f"{site}/day?date=0001-01-01", f"{site}/day?date=9999-12-31",
                 f"{site}/attendance?date=0001-01-01", f"{site}/attendance?date=9999-12-31&format=csv",
                 f"{site}/utilization?from=0001-01-01", f"{site}/utilization?to=0001-01-07",
                 f"{site}/utilization?from=9999-12-25&to=9999-12-31"):
        r = await c.get(path, headers=headers)
        _refused(r)
        assert r.status_code == 422 and "between the years 2000 and 2999" in r.text, (path, r.text)


async def test_explicit_null_in_patch_is_422(admin: AdminClient) -> None:
    c, headers, _ = admin
    admin_site = f"/v1/admin/{TENANT}/sites/lot-a"
    for path, body in ((admin_site, {"name": None}), (admin_site, {"lat": None, "lon": 1}),
                       (f"{admin_site}/spaces/a1", {"attributes": None}),
                       (f"{admin_site}/devices/s-a1", {"kind": None})):
        r = await c.patch(path, json=body, headers=headers)
        _refused(r)
        assert r.status_code == 422 and "may not be null" in r.json()["detail"][0]["msg"], r.text
    r = await c.patch(admin_site, json={"name_fa": None, "address": None}, headers=headers)
    assert r.status_code == 200, r.text  # a column that may be empty is cleared by null
    site = (await c.get(f"/v1/sites/{TENANT}/lot-a")).json()
    assert site["name_fa"] is None and site["address"] is None and site["name"] == "Lot A"


async def test_nan_infinity_and_nul_in_json_body_are_422(
        admin: AdminClient) -> None:
    c, headers, _ = admin
    site = f"/v1/admin/{TENANT}/sites/lot-a"
    cases: list[tuple[str, str, str]] = [
        ("POST", f"/v1/admin/{TENANT}/sites",
         '{"id": "n1", "kind": "parking", "name": "x", "lat": NaN, "lon": 1}'),
        ("PATCH", site, '{"lon": -Infinity}'),
        ("PATCH", f"{site}/spaces/a1", '{"attributes": {"depth": [1, Infinity]}}'),
        ("PATCH", f"{site}/spaces/a1", '{"attributes": {"vendor": "a\\u0000b"}}'),
        ("PATCH", f"{site}/spaces/a1", '{"attributes": {"a\\u0000": 1}}'),
        ("PATCH", site, '{"name": "\\u0000"}'),
        ("POST", f"{site}/devices", '{"id": "cam-9", "kind": "camera", "spaces": {"a1": [[0, NaN]]}}'),
        ("PUT", f"/v1/admin/{TENANT}/layout",
         '{"tenant": {"id": "testcity", "name": "T"}, "sites": [{"id": "x", "kind": "parking", '
         '"name": "X", "lat": NaN, "lon": 1, "zones": []}]}'),
        ("PUT", f"/v1/admin/{TENANT}/layout",
         '{"tenant": {"id": "testcity", "name": "T\\u0000"}, "sites": []}'),
    ]
    for method, path, body in cases:
        r = await c.request(method, path, content=body, headers={**headers, **JSON})
        _refused(r)
        assert r.status_code == 422 and isinstance(r.json()["detail"], list), (method, path, body, r.text)


async def test_opening_hours_99_99_refused_at_input(
        admin: AdminClient) -> None:
    c, headers, _ = admin
    site = f"/v1/admin/{TENANT}/sites/market"
    for hours in ({"open": "99:99", "close": "10:00"}, {"open": "07:00", "close": "24:01"},
                  {"open": "٠٧:٠٠", "close": "10:00"},
                  {"open": "07:00", "close": "21:00", "closed_days": ["fri"]}):
        r = await c.patch(site, json={"opening_hours": hours}, headers=headers)
        _refused(r)
        assert r.status_code == 422, (hours, r.text)
    r = await c.patch(site, json={"opening_hours": {"open": "07:00", "close": "24:00"}}, headers=headers)
    assert r.status_code == 200, r.text
    for path in (f"/v1/manage/{TENANT}/sites/market/attendance?date=2026-11-28",
                 f"/v1/manage/{TENANT}/alerts"):
        assert (await c.get(path, headers=headers)).status_code == 200


async def test_conflict_does_not_leak_database_internals(
        admin: AdminClient) -> None:
    c, headers, _ = admin
    r = await c.post(f"/v1/admin/{TENANT}/sites", json={"id": "lot-a", "kind": "parking", "name": "x",
                                                         "lat": 1, "lon": 1}, headers=headers)
    assert r.status_code == 409 and r.json() == {"detail": "site 'lot-a' exists already"}
    lorawan = {"kind": "lorawan", "dev_eui": "00aa00aa00aa00aa", "occupied_path": "object.occupied"}
    r = await c.post(f"/v1/admin/{TENANT}/sites/lot-a/devices", headers=headers,
                     json={"id": "l1", **lorawan, "spaces": ["a1"]})
    assert r.status_code == 201, r.text
    r = await c.post(f"/v1/admin/{TENANT}/sites/market/devices", headers=headers,
                     json={"id": "l2", **lorawan, "dev_eui": "00AA00AA00AA00AA", "spaces": ["stall-001"]})
    assert r.status_code == 409 and not DATABASE_TEXT.search(r.text), r.text
    assert "'l2'" in r.text and "DevEUI" in r.text


async def test_database_errors_are_answered_without_their_text(database: str) -> None:
    """Whatever the database refuses that no check caught first: its class decides the status,
    a fixed sentence the body."""
    await seed_city(database)
    app = app_for(database)
    sql = {"data": "SELECT 1 / 0", "text": "SELECT 'x'::int", "unique": "INSERT INTO tenants (slug, name) "
           f"VALUES ('{TENANT}', 'again')", "other": "SELECT * FROM no_such_table"}

    async def run(con: Connection, what: str) -> Any:
        return await con.fetchval(sql[what])

    app.add_api_route("/test/sql/{what}", run)
    async with asgi_client(app) as c:
        for what, status in (("data", 422), ("text", 422), ("unique", 409), ("other", 500)):
            r = await c.get(f"/test/sql/{what}")
            assert r.status_code == status, (what, r.text)
            assert not DATABASE_TEXT.search(r.text) and "division" not in r.text, r.text
            assert r.headers["content-type"] == "application/json"


async def test_422_bodies_are_validation_lists(admin: AdminClient) -> None:
    """A 422 has one shape whichever check refused: FastAPI's ``HTTPValidationError``."""
    c, headers, _ = admin
    reversed_range = "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"
    for r in (await c.get(f"/v1/sites/{TENANT}/lot-a/history?{reversed_range}"),
              await c.get("/v1/sites?near=95,1"),
              await c.put(f"/v1/admin/{TENANT}/layout", json={"tenant": {"id": "othercity", "name": "O"},
                                                              "sites": []}, headers=headers)):
        assert r.status_code == 422, r.text
        for item in r.json()["detail"]:
            assert isinstance(item["loc"], list)
            assert isinstance(item["msg"], str) and isinstance(item["type"], str)
