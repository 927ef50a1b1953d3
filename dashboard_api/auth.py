"""Bearer tokens of market managers and operators, and gateway credentials.

How this works: a token is 32 random bytes (256 bits) in URL-safe base64 with
a ``pbz_`` prefix, printed once. The database keeps only its SHA-256: a
256-bit random secret cannot be guessed, so a slow password hash (scrypt,
PBKDF2) would buy nothing, and a plain digest lets a request find its token
with one indexed lookup. A token belongs to one tenant with a role:
``manager`` (of the listed sites, or of every site when none is listed) or
``admin`` (the tenant's operator: provisioning, and everything a manager may).

A token may carry an expiry, and may be revoked; either ends it (see
``dashboard_api.tokens`` for listing and revoking, ``dashboard_api.token_guard``
for closing the streams it holds open). Each use stamps ``last_used_at``, at
most once every ``TOUCH_EVERY_S`` in the lookup's own statement: no extra round
trip, and no row write per request.

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
from datetime import datetime
from typing import Literal

import asyncpg

Role = Literal["manager", "admin"]
Refusal = Literal["unknown", "revoked", "expired"]
TOKEN_PREFIX = "pbz_"
PBKDF2_ITERATIONS = 101  # Mosquitto's default; the secret itself carries 256 bits
TOUCH_EVERY_S = 60.0  # last_used_at is this precise: a token in use is written once a minute at most


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


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just made: its row id and the token itself (which exists only here)."""

    id: int
    token: str


async def issue_token(
    con: asyncpg.Connection, *, tenant: str, role: Role, sites: tuple[str, ...] = (),
    label: str | None = None, expires_at: datetime | None = None, actor: str = "cli",
) -> IssuedToken:
    """Store a new token's hash and audit it. ``LookupError`` for an unknown tenant or site."""
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
            "INSERT INTO api_tokens (token_hash, tenant_id, role, sites, label, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            token_hash(token), tenant_id, role, list(sites), label, expires_at)
        await con.execute(
            "INSERT INTO audit_log (actor, tenant, action, target, detail) "
            "VALUES ($1, $2, 'token.create', $3, jsonb_build_object('role', $4::text, 'sites', $5::text[], "
            "'label', $6::text, 'expires_at', $7::timestamptz))",
            actor, tenant, f"token:{token_id}", role, list(sites), label, expires_at)
    return IssuedToken(token_id, token)


async def create_token(
    con: asyncpg.Connection, *, tenant: str, role: Role, sites: tuple[str, ...] = (),
    label: str | None = None, expires_at: datetime | None = None, actor: str = "cli",
) -> str:
    """``issue_token``, returning only the token."""
    issued = await issue_token(con, tenant=tenant, role=role, sites=sites, label=label,
                               expires_at=expires_at, actor=actor)
    return issued.token


def refusal(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> Refusal | None:
    """Why a token is no longer valid at ``now`` (``"revoked"``, ``"expired"``), or None (pure)."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return None


# One statement: find the token and, when it is live and its last use is older
# than $2 seconds, stamp it (a data-modifying WITH runs whether or not it is read).
# The UPDATE re-reads the row it locks, so requests racing on one token write it
# once; the others skip (their WHERE no longer holds).
_PRINCIPAL_SQL = """
WITH found AS (
    SELECT k.id, t.slug AS tenant, k.role, k.sites, k.revoked_at, k.expires_at, now() AS now
    FROM api_tokens k JOIN tenants t ON t.id = k.tenant_id
    WHERE k.token_hash = $1
), touched AS (
    UPDATE api_tokens k SET last_used_at = found.now FROM found
    WHERE k.id = found.id AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > found.now)
      AND (k.last_used_at IS NULL OR k.last_used_at < found.now - make_interval(secs => $2))
    RETURNING k.id
)
SELECT * FROM found
"""


async def lookup_token(con: asyncpg.Connection, token: str) -> Principal | Refusal:
    """The principal of a live token; else why not (``unknown``, ``revoked``, ``expired``).
    Records the token's use (at most once every ``TOUCH_EVERY_S``)."""
    row = await con.fetchrow(_PRINCIPAL_SQL, token_hash(token), TOUCH_EVERY_S)
    if row is None:
        return "unknown"
    refused = refusal(row["revoked_at"], row["expires_at"], row["now"])
    if refused is not None:
        return refused
    return Principal(row["id"], row["tenant"], row["role"], tuple(row["sites"]))


async def principal_for(con: asyncpg.Connection, token: str) -> Principal | None:
    """The live (known, not revoked, not expired) token's principal, or None."""
    found = await lookup_token(con, token)
    return found if isinstance(found, Principal) else None


async def token_refusal(con: asyncpg.Connection, token_id: int) -> Refusal | None:
    """Why the token with this id is no longer valid, or None while it is (for open streams)."""
    row = await con.fetchrow(
        "SELECT revoked_at, expires_at, now() AS now FROM api_tokens WHERE id = $1", token_id)
    if row is None:
        return "unknown"
    return refusal(row["revoked_at"], row["expires_at"], row["now"])
