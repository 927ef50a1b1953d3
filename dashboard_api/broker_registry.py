"""The broker's identities in the database: read them all, and write service accounts.

Gateways' credentials are written by ``dashboard_api.registry`` (issued with
the gateway, rotated, retired); service accounts (``broker_accounts``,
migration 010) here. Both keep only the ``$7$`` hash of a secret that is
returned once. Every write is audited in its transaction (tenant ``*``: a
service account belongs to the deployment, not to one tenant) and fires the
``parkbazaar_broker`` notification that ``parkbazaar broker sync`` listens for.
"""

from __future__ import annotations

import asyncpg

from dashboard_api import BadInput, Conflict, NotFound, registry
from dashboard_api.auth import hash_secret, new_secret
from dashboard_api.broker import ACCOUNT_NAME, SERVICE_ROLES, Identity, Role
from dashboard_api.registry import audit

CHANNEL = "parkbazaar_broker"  # NOTIFY'd by migration 010's triggers
DEPLOYMENT = "*"  # the audit log's tenant of deployment-wide rows

_GATEWAYS = """SELECT t.slug AS tenant, g.slug AS gateway, g.secret_hash FROM gateways g
JOIN tenants t ON t.id = g.tenant_id
WHERE g.retired_at IS NULL AND g.secret_hash IS NOT NULL"""
_ACCOUNTS = """SELECT username, role, secret_hash FROM broker_accounts WHERE retired_at IS NULL"""


async def identities(con: asyncpg.Connection) -> list[Identity]:
    """Every identity the broker should admit right now (live gateways with a secret, live accounts)."""
    async with con.transaction(readonly=True, isolation="repeatable_read"):
        gateways = await con.fetch(_GATEWAYS)
        accounts = await con.fetch(_ACCOUNTS)
    return ([Identity.of_gateway(r["tenant"], r["gateway"], r["secret_hash"]) for r in gateways]
            + [Identity(r["username"], r["role"], r["secret_hash"]) for r in accounts])


def _check(username: str, role: Role | None = None) -> None:
    if not ACCOUNT_NAME.match(username):
        raise BadInput(f"account name {username!r}: letters, digits, '-' and '_' only (1-64)")
    if role is not None and role not in SERVICE_ROLES:
        raise BadInput(f"role {role!r}: one of {', '.join(SERVICE_ROLES)}")


async def create_account(con: asyncpg.Connection, username: str, role: Role, *,
                         actor: str = "cli") -> str:
    """A new service account; returns its secret (the only time it exists)."""
    _check(username, role)
    secret = new_secret()
    async with con.transaction():
        try:
            await con.execute(
                "INSERT INTO broker_accounts (username, role, secret_hash) VALUES ($1, $2, $3)",
                username, role, hash_secret(secret))
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"broker account {username!r} exists already (rotate or retire it)") from exc
        await audit(con, actor, DEPLOYMENT, "broker_account.create", username, {"role": role})
    return secret


async def rotate_account(con: asyncpg.Connection, username: str, *, actor: str = "cli") -> str:
    """A new secret for a live account; the old one stops working at the broker's next sync."""
    _check(username)
    secret = new_secret()
    async with con.transaction():
        done = await con.fetchval(
            "UPDATE broker_accounts SET secret_hash = $2, rotated_at = now() "
            "WHERE username = $1 AND retired_at IS NULL RETURNING id", username, hash_secret(secret))
        if done is None:
            raise NotFound(f"no live broker account {username!r}")
        await audit(con, actor, DEPLOYMENT, "broker_account.rotate", username)
    return secret


async def retire_account(con: asyncpg.Connection, username: str, *, actor: str = "cli") -> None:
    async with con.transaction():
        done = await con.fetchval(
            "UPDATE broker_accounts SET retired_at = now() WHERE username = $1 AND retired_at IS NULL "
            "RETURNING id", username)
        if done is None:
            raise NotFound(f"no live broker account {username!r}")
        await audit(con, actor, DEPLOYMENT, "broker_account.retire", username)


async def accounts(con: asyncpg.Connection) -> list[dict[str, object]]:
    """Live service accounts (never their hashes)."""
    rows = await con.fetch("SELECT username, role, created_at, rotated_at FROM broker_accounts "
                           "WHERE retired_at IS NULL ORDER BY username")
    return [dict(r) for r in rows]


async def issue_local(con: asyncpg.Connection, gateways: list[tuple[str, str]], account: str,
                      *, actor: str) -> tuple[str, dict[tuple[str, str], str]]:
    """Fresh secrets for a one-machine stack (the demo): an ``ingest`` account (created, or
    rotated when it exists) and each of these (tenant, gateway)s; returns them."""
    exists = await con.fetchval(
        "SELECT true FROM broker_accounts WHERE username = $1 AND retired_at IS NULL", account)
    ingest = (await rotate_account(con, account, actor=actor) if exists
              else await create_account(con, account, "ingest", actor=actor))
    secrets = {key: await registry.rotate_credentials(con, actor, *key) for key in gateways}
    return ingest, secrets
