"""Bearer tokens of market managers and operators, and gateway credentials.

How this works: a token is 32 random bytes (256 bits) in URL-safe base64 with
a ``pbz_`` prefix, printed once. The database keeps only its SHA-256: a
256-bit random secret cannot be guessed, so a slow password hash (scrypt,
PBKDF2) would buy nothing, and a plain digest lets a request find its token
with one indexed lookup. A token belongs to one tenant with a role:
``manager`` (of the listed sites, or of every site when none is listed) or
``admin`` (the tenant's operator: provisioning, and everything a manager may).

Gateway MQTT secrets are hashed as Mosquitto's password files store them
(``$7$`` PBKDF2-SHA512 with a random salt), so a broker password file can be
generated from the registry without the secrets ever being kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

import asyncpg

Role = Literal["manager", "admin"]
TOKEN_PREFIX = "pbz_"
PBKDF2_ITERATIONS = 101  # Mosquitto's default; the secret itself carries 256 bits


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a token of a tenant, with a role and its sites."""

    token_id: int
    tenant: str
    role: Role
    sites: tuple[str, ...] = ()

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"

    def may_manage(self, tenant: str, site: str | None = None) -> bool:
        """Manager rights over the tenant (and the site, when one is named)."""
        if tenant != self.tenant:
            return False
        return self.role == "admin" or site is None or not self.sites or site in self.sites

    def may_administer(self, tenant: str) -> bool:
        return tenant == self.tenant and self.role == "admin"


def new_token() -> str:
    """A fresh bearer token (shown once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh gateway MQTT password."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """``$7$iterations$salt$hash`` (PBKDF2-SHA512, Mosquitto's password-file format)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches a ``hash_secret`` value (constant time)."""
    try:
        _, kind, rounds, salt, digest = stored.split("$")
        if kind != "7":
            return False
        got = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), base64.b64decode(salt), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


async def create_token(
    con: asyncpg.Connection, *, tenant: str, role: Role, sites: tuple[str, ...] = (),
    label: str | None = None, actor: str = "cli",
) -> str:
    """Store a new token's hash and audit it; returns the token (the only time it exists)."""
    token = new_token()
    async with con.transaction():
        tenant_id = await con.fetchval("SELECT id FROM tenants WHERE slug = $1", tenant)
        if tenant_id is None:
            raise LookupError(f"no tenant {tenant!r}")
        known = {r["slug"] for r in await con.fetch(
            "SELECT slug FROM sites WHERE tenant_id = $1 AND slug = ANY($2::text[])", tenant_id, list(sites))}
        missing = sorted(set(sites) - known)
        if missing:
            raise LookupError(f"tenant {tenant!r} has no sites {missing}")
        token_id = await con.fetchval(
            "INSERT INTO api_tokens (token_hash, tenant_id, role, sites, label) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING id",
            token_hash(token), tenant_id, role, list(sites), label)
        await con.execute(
            "INSERT INTO audit_log (actor, tenant, action, target, detail) "
            "VALUES ($1, $2, 'token.create', $3, jsonb_build_object('role', $4::text, 'sites', $5::text[]))",
            actor, tenant, f"token:{token_id}", role, list(sites))
    return token


async def principal_for(con: asyncpg.Connection, token: str) -> Principal | None:
    """The live (not revoked) token's principal, or None."""
    row = await con.fetchrow(
        """SELECT k.id, t.slug AS tenant, k.role, k.sites FROM api_tokens k
           JOIN tenants t ON t.id = k.tenant_id
           WHERE k.token_hash = $1 AND k.revoked_at IS NULL""",
        token_hash(token))
    if row is None:
        return None
    return Principal(row["id"], row["tenant"], row["role"], tuple(row["sites"]))
