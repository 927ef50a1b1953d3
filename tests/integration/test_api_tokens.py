"""Tokens have a life cycle over the admin API: issued once, listed without their secret,
revoked (idempotently, audited), expired; refused with 401 afterwards; their last use recorded
at most once a minute; only an admin of the tenant may do any of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.support.api import OTHER, TENANT, app_for, asgi_client, seed_city, token
from tests.support.waiting import wait_until

BASE = f"/v1/admin/{TENANT}/tokens"
STALLS = f"/v1/manage/{TENANT}/sites/market/stalls"

Client = tuple[httpx.AsyncClient, dict[str, str]]


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
async def client(database: str) -> AsyncIterator[Client]:
    await seed_city(database)
    tokens = {"admin": await token(database, TENANT, "admin"),
              "manager": await token(database, TENANT, "manager", "market"),
              "other_admin": await token(database, OTHER, "admin")}
    async with asgi_client(app_for(database)) as c:
        yield c, tokens


async def _issue(c: httpx.AsyncClient, admin: str, **body: object) -> dict[str, object]:
    r = await c.post(BASE, headers=bearer(admin), json={"role": "manager", **body})
    assert r.status_code == 201, r.text
    created: dict[str, object] = r.json()
    return created


async def test_issue_list_revoke_over_the_api(client: Client, db: asyncpg.Connection) -> None:
    c, tokens = client
    new = await _issue(c, tokens["admin"], sites=["market"], label="Karimi",
                       expires_at=(datetime.now(UTC) + timedelta(days=30)).isoformat())
    secret = str(new["token"])
    assert secret.startswith("pbz_") and new["state"] == "active" and new["last_used_at"] is None
    assert (await c.get(STALLS, headers=bearer(secret))).status_code == 200

    listed = await c.get(BASE, headers=bearer(tokens["admin"]))
    assert listed.status_code == 200
    stored_hash = await db.fetchval("SELECT token_hash FROM api_tokens WHERE id = $1", new["id"])
    assert secret not in listed.text and stored_hash not in listed.text and '"token"' not in listed.text
    mine = next(t for t in listed.json() if t["id"] == new["id"])
    assert mine["label"] == "Karimi" and mine["sites"] == ["market"] and mine["expires_at"]
    assert [t["role"] for t in listed.json()] == ["admin", "manager", "manager"]  # oldest first

    r = await c.delete(f"{BASE}/{new['id']}", headers=bearer(tokens["admin"]))
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    refused = await c.get(STALLS, headers=bearer(secret))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    again = await c.delete(f"{BASE}/{new['id']}", headers=bearer(tokens["admin"]))
    assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
    assert (await c.get(f"{BASE}/{new['id']}", headers=bearer(tokens["admin"]))).json()["state"] == "revoked"

    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE target = $1 ORDER BY id", f"token:{new['id']}")]
    assert actions == ["token.create", "token.revoke"]  # the second revoke changed nothing
    actor = await db.fetchval("SELECT actor FROM audit_log WHERE action = 'token.revoke'")
    assert actor == "token:1"


async def test_revoke_refusals(client: Client) -> None:
    c, tokens = client
    admin = bearer(tokens["admin"])
    assert (await c.delete(f"{BASE}/9999", headers=admin)).status_code == 404
    r = await c.delete(f"{BASE}/1", headers=admin)  # the admin token itself
    assert r.status_code == 409 and "itself" in r.json()["detail"]
    for bad in ("0", "2147483648", "x", "%C2%B2"):
        assert (await c.delete(f"{BASE}/{bad}", headers=admin)).status_code == 422, bad
    assert (await c.get(BASE, headers=admin)).status_code == 200  # still valid


async def test_manager_cannot_list_issue_or_revoke(client: Client) -> None:
    c, tokens = client
    manager = bearer(tokens["manager"])
    assert (await c.get(BASE, headers=manager)).status_code == 403
    assert (await c.post(BASE, headers=manager, json={"role": "admin"})).status_code == 403
    assert (await c.delete(f"{BASE}/1", headers=manager)).status_code == 403
    assert (await c.delete(f"{BASE}/2", headers=manager)).status_code == 403  # not even its own


async def test_another_tenants_admin_cannot_revoke(client: Client) -> None:
    c, tokens = client
    other = bearer(tokens["other_admin"])
    assert (await c.delete(f"{BASE}/2", headers=other)).status_code == 403
    assert (await c.post(BASE, headers=other, json={"role": "admin"})).status_code == 403
    # through its own tenant's path, a token of ours does not exist
    r = await c.delete(f"/v1/admin/{OTHER}/tokens/2", headers=other)
    assert r.status_code == 404
    listed = await c.get(f"/v1/admin/{OTHER}/tokens", headers=other)
    assert [t["tenant"] for t in listed.json()] == [OTHER]
    assert (await c.get(STALLS, headers=bearer(tokens["manager"]))).status_code == 200


async def test_issue_refusals(client: Client) -> None:
    c, tokens = client
    admin = bearer(tokens["admin"])
    r = await c.post(BASE, headers=admin, json={"role": "manager", "sites": ["nope"]})
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = await c.post(BASE, headers=admin, json={"role": "manager", "expires_at": past})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "expires_at"]
    for body in ({"role": "manager", "expires_at": "9999-12-31T23:59:59-01:00"},
                 {"role": "manager", "expires_at": "0001-01-01T00:00:00+01:00"},
                 {"role": "admin", "sites": ["market"]}, {"role": "manager", "label": "\u0000"},
                 {"role": "manager", "sites": None}, {"role": "manager", "id": 5}):
        r = await c.post(BASE, headers=admin, json=body)
        assert r.status_code == 422 and isinstance(r.json()["detail"], list), (body, r.text)
    admin_made = await _issue(c, tokens["admin"], role="admin")
    assert admin_made["role"] == "admin" and admin_made["tenant"] == TENANT


async def test_expired_token_is_refused(client: Client) -> None:
    c, tokens = client
    new = await _issue(c, tokens["admin"], expires_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat())
    headers = bearer(str(new["token"]))
    assert (await c.get(STALLS, headers=headers)).status_code == 200

    async def refused() -> bool:
        nonlocal r
        r = await c.get(STALLS, headers=headers)
        return r.status_code != 200

    r = await c.get(STALLS, headers=headers)
    await wait_until(refused, 10, "the token expiring")
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    listed = (await c.get(f"{BASE}/{new['id']}", headers=bearer(tokens["admin"]))).json()
    assert listed["state"] == "expired"


async def test_last_used_at_moves_at_most_once_a_minute(client: Client, db: asyncpg.Connection) -> None:
    c, tokens = client
    query = "SELECT last_used_at FROM api_tokens WHERE id = 2"
    assert await db.fetchval(query) is None
    assert (await c.get(STALLS, headers=bearer(tokens["manager"]))).status_code == 200
    first = await db.fetchval(query)
    assert first is not None and abs(datetime.now(UTC) - first) < timedelta(seconds=30)
    assert (await c.get(STALLS, headers=bearer(tokens["manager"]))).status_code == 200
    assert await db.fetchval(query) == first  # no write within the minute
    await db.execute("UPDATE api_tokens SET last_used_at = last_used_at - interval '2 minutes' WHERE id = 2")
    assert (await c.get(STALLS, headers=bearer(tokens["manager"]))).status_code == 200
    assert await db.fetchval(query) >= first
    listed = (await c.get(f"{BASE}/2", headers=bearer(tokens["admin"]))).json()
    assert listed["last_used_at"] is not None
    await db.execute("UPDATE api_tokens SET revoked_at = now(), last_used_at = NULL WHERE id = 2")
    assert (await c.get(STALLS, headers=bearer(tokens["manager"]))).status_code == 401
    assert await db.fetchval(query) is None  # a refused token is not "used"
