"""`parkbazaar token create|list|revoke` on a real database, run in-process: expiry options,
a listing that never shows a token or its hash, idempotent revocation, and clear refusals."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from dashboard_api.auth import principal_for
from parkbazaar.cli import main
from tests.support.api import OTHER, TENANT, seed_city
from tests.support.waiting import wait_until_sync


@pytest.fixture
def cli(database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``cli(*argv)`` → (exit code, stdout, stderr) of ``parkbazaar`` on this test's database."""
    asyncio.run(seed_city(database))
    monkeypatch.setenv("PARKBAZAAR_DATABASE_URL", database)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse refusals
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _sql(dsn: str, query: str, *args: Any) -> Any:
    async def run() -> Any:
        con = await asyncpg.connect(dsn)
        try:
            return await con.fetch(query, *args)
        finally:
            await con.close()

    return asyncio.run(run())


def _valid(dsn: str, tok: str) -> bool:
    async def run() -> bool:
        con = await asyncpg.connect(dsn)
        try:
            return await principal_for(con, tok) is not None
        finally:
            await con.close()

    return asyncio.run(run())


def test_create_list_revoke(cli: Any, database: str) -> None:
    code, manager, _ = cli("token", "create", "--tenant", TENANT, "--role", "manager", "--site", "market",
                           "--label", "Karimi", "--expires-in", "30d")
    assert code == 0 and manager.strip().startswith("pbz_")
    code, admin, _ = cli("token", "create", "--tenant", TENANT, "--role", "admin")
    assert code == 0
    code, out, _ = cli("token", "create", "--tenant", OTHER, "--role", "admin")
    assert code == 0

    code, out, _ = cli("token", "list", "--tenant", TENANT, "--json")
    assert code == 0
    listed = json.loads(out)
    hashes = [r["token_hash"] for r in _sql(database, "SELECT token_hash FROM api_tokens")]
    assert not any(secret in out for secret in [manager.strip(), admin.strip(), *hashes])
    assert [(t["id"], t["role"], t["state"]) for t in listed] == [
        (1, "manager", "active"), (2, "admin", "active")]
    expires = datetime.fromisoformat(listed[0]["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert listed[0]["label"] == "Karimi" and listed[1]["expires_at"] is None
    assert set(listed[0]) == {"id", "tenant", "role", "sites", "label", "created_at", "expires_at",
                              "last_used_at", "revoked_at", "state"}

    code, table, _ = cli("token", "list", "--tenant", TENANT)
    assert code == 0 and table.splitlines()[0].startswith("ID") and len(table.splitlines()) == 3

    assert _valid(database, manager.strip())
    code, out, _ = cli("token", "revoke", "1", "--tenant", TENANT)
    assert code == 0 and "revoked" in out
    assert not _valid(database, manager.strip())
    code, again, _ = cli("token", "revoke", "1", "--tenant", TENANT)
    assert code == 0 and again == out  # idempotent: the same first revocation time
    code, out, _ = cli("token", "list", "--tenant", TENANT, "--json")
    assert [t["state"] for t in json.loads(out)] == ["revoked", "active"]
    audit = _sql(database, "SELECT actor, action FROM audit_log WHERE target = 'token:1' ORDER BY id")
    assert [(r["actor"], r["action"]) for r in audit] == [("cli", "token.create"), ("cli", "token.revoke")]


def test_refusals(cli: Any) -> None:
    cli("token", "create", "--tenant", OTHER, "--role", "admin")
    for argv, says in [
        (("token", "revoke", "1", "--tenant", TENANT), "no token 1"),  # a token of another tenant
        (("token", "revoke", "99", "--tenant", TENANT), "no token 99"),
        (("token", "list", "--tenant", "nowhere"), "no tenant"),
        (("token", "create", "--tenant", TENANT, "--role", "manager", "--expires-in", "30"), "duration"),
        (("token", "create", "--tenant", TENANT, "--role", "manager", "--expires-at", "2001-01-01T00:00Z"),
         "future"),
        (("token", "create", "--tenant", TENANT, "--role", "manager", "--expires-at", "2030-01-01T00:00"),
         "UTC offset"),
        (("token", "revoke", "²", "--tenant", TENANT), "positive whole number"),
        (("token", "create", "--tenant", TENANT, "--role", "manager", "--expires-in", "1d",
          "--expires-at", "2030-01-01T00:00Z"), "not allowed with"),
    ]:
        code, _, err = cli(*argv)
        assert code == 2 and says in err, (argv, err)
    code, out, _ = cli("token", "list", "--tenant", TENANT, "--json")
    assert code == 0 and json.loads(out) == []  # the refused commands created nothing


def test_token_made_to_expire_is_listed_expired(cli: Any, database: str) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    code, tok, _ = cli("token", "create", "--tenant", TENANT, "--role", "manager", "--expires-at", soon)
    assert code == 0 and _valid(database, tok.strip())
    wait_until_sync(lambda: not _valid(database, tok.strip()), 10, "the token expiring")
    code, out, _ = cli("token", "list", "--tenant", TENANT, "--json")
    assert [t["state"] for t in json.loads(out)] == ["expired"]
