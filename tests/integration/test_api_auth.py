"""Every manager and admin route refuses no token and a wrong token (401) and a token
of another tenant (403); a manager token is refused where an admin is needed and for
sites it does not hold."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.api import OTHER, TENANT, app_for, asgi_client, seed_city, token

PATH_VALUES = {"tenant": TENANT, "site": "market", "zone": "hall", "space": "stall-001",
               "gateway": "gw-1", "device": "s-a1", "token_id": "1", "version": "1"}


def _protected() -> list[tuple[str, str]]:
    """(method, path) of every route of the OpenAPI description under /v1/manage/{tenant} and /v1/admin."""
    paths = app_for("postgresql://unused@127.0.0.1:1/x").openapi()["paths"]
    out = []
    for template, ops in paths.items():
        if template.startswith(("/v1/manage/{tenant}", "/v1/admin/")):
            path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], template)
            out += [(method.upper(), path) for method in sorted(ops)]
    return out


PROTECTED = _protected()


@pytest.fixture
async def client(database: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    await seed_city(database)
    tokens = {
        "admin": await token(database, TENANT, "admin"),
        "manager": await token(database, TENANT, "manager", "market"),
        "manager_lot": await token(database, TENANT, "manager", "lot-a"),
        "other_admin": await token(database, OTHER, "admin"),
    }
    async with asgi_client(app_for(database)) as c:
        yield c, tokens


def test_every_protected_route_is_listed() -> None:
    assert len(PROTECTED) >= 25
    assert {m for m, _ in PROTECTED} == {"GET", "POST", "PATCH", "DELETE", "PUT"}


async def test_each_route_refuses_missing_wrong_and_foreign_tokens(
    client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, tokens = client
    for method, path in PROTECTED:
        r = await c.request(method, path)
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        r = await c.request(method, path, headers={"Authorization": "Bearer pbz_not-a-token"})
        assert r.status_code == 401, (method, path, r.text)
        r = await c.request(method, path, headers={"Authorization": f"Bearer {tokens['other_admin']}"})
        assert r.status_code == 403, (method, path, r.text)


async def test_manager_rights(client: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    c, tokens = client
    for method, path in PROTECTED:
        if path.endswith("/live"):  # a stream never ends: its refusals are tested above
            continue
        r = await c.request(method, path, headers={"Authorization": f"Bearer {tokens['manager']}"})
        if path.startswith("/v1/admin/"):
            assert r.status_code == 403, (method, path)
        else:
            assert r.status_code not in (401, 403), (method, path, r.text)
    r = await c.get(f"/v1/manage/{TENANT}/sites/market/attendance",
                    headers={"Authorization": f"Bearer {tokens['manager_lot']}"})
    assert r.status_code == 403
    r = await c.get("/v1/manage/whoami", headers={"Authorization": f"Bearer {tokens['manager']}"})
    assert r.json() == {"tenant": TENANT, "role": "manager", "sites": ["market"]}


async def test_revoked_token_is_refused(client: tuple[httpx.AsyncClient, dict[str, str]], db: object) -> None:
    c, tokens = client
    import asyncpg

    assert isinstance(db, asyncpg.Connection)
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    assert (await c.get(f"/v1/admin/{TENANT}/audit", headers=headers)).status_code == 200
    await db.execute("UPDATE api_tokens SET revoked_at = now()")
    assert (await c.get(f"/v1/admin/{TENANT}/audit", headers=headers)).status_code == 401
    stored = await db.fetch("SELECT token_hash FROM api_tokens")
    assert all(len(r["token_hash"]) == 64 and r["token_hash"] not in tokens.values() for r in stored)
