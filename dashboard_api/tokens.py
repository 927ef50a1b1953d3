"""The life cycle of API tokens: expiry, listing, revocation (shared by the CLI and the admin API).

A token is *active* until it is revoked or its ``expires_at`` passes; then it is
refused (401) and its open streams end (``dashboard_api.token_guard``). Nothing
here ever returns a token or its hash: a token exists only in the answer that
created it. Revoking is idempotent (a second revoke changes nothing and writes no
audit row); a token of another tenant is ``NotFound``, as if it did not exist.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict

from dashboard_api import NotFound, registry
from dashboard_api.auth import Role, refusal

State = Literal["active", "revoked", "expired"]
MAX_LIFETIME = timedelta(days=3660)  # ten years: far enough for any real use, far from year 9999
LIST_MAX = 1000

_ID = re.compile(r"^[0-9]{1,10}$")
COLUMNS = ("ID", "ROLE", "SITES", "LABEL", "CREATED", "EXPIRES", "LAST USED", "STATE")
_DURATION = re.compile(r"^([0-9]{1,5})([mhdw])$")  # ASCII digits only: `²` or `٣` are not numbers here
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


class TokenInfo(BaseModel):
    """A token as listed: what it may do and when it was made, last used, ends (never the secret)."""

    model_config = ConfigDict(frozen=True)

    id: int
    tenant: str
    role: Role
    sites: list[str]
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: State


def parse_duration(text: str) -> timedelta:
    """``90m``, ``12h``, ``30d``, ``2w`` → a timedelta; ``ValueError`` saying why (pure)."""
    m = _DURATION.match(text)
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"a duration is a positive whole number and a unit m, h, d or w (e.g. 30d), "
                         f"got {text!r}")
    return int(m.group(1)) * _UNIT[m.group(2)]


def check_expiry(expires_at: datetime, now: datetime) -> datetime:
    """``expires_at`` in UTC when it is aware, after ``now`` and within ``MAX_LIFETIME``;
    ``ValueError`` otherwise (pure)."""
    if expires_at.tzinfo is None:
        raise ValueError("the expiry needs a UTC offset (e.g. 2027-01-01T00:00:00Z)")
    if expires_at <= now:
        raise ValueError("the expiry must be in the future")
    if expires_at - now > MAX_LIFETIME:
        raise ValueError(f"the expiry must be within {MAX_LIFETIME.days} days")
    return expires_at.astimezone(UTC)


def expiry_from(*, expires_in: str | None, expires_at: str | None, now: datetime) -> datetime | None:
    """The expiry of ``--expires-in DURATION`` or ``--expires-at ISO`` (at most one); None: never."""
    if expires_in is not None:
        lifetime = parse_duration(expires_in)
        if lifetime > MAX_LIFETIME:
            raise ValueError(f"the expiry must be within {MAX_LIFETIME.days} days")
        return now + lifetime
    if expires_at is not None:
        try:
            when = datetime.fromisoformat(expires_at)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {expires_at!r}") from None
        return check_expiry(when, now)
    return None


_COLUMNS = """k.id, t.slug AS tenant, k.role, k.sites, k.label, k.created_at, k.expires_at,
k.last_used_at, k.revoked_at, now() AS now"""


def _info(row: asyncpg.Record) -> TokenInfo:
    state: State = refusal(row["revoked_at"], row["expires_at"], row["now"]) or "active"  # type: ignore[assignment]
    return TokenInfo(id=row["id"], tenant=row["tenant"], role=row["role"], sites=list(row["sites"]),
                     label=row["label"], created_at=row["created_at"], expires_at=row["expires_at"],
                     last_used_at=row["last_used_at"], revoked_at=row["revoked_at"], state=state)


async def list_tokens(con: asyncpg.Connection, tenant: str, *, limit: int = LIST_MAX) -> list[TokenInfo]:
    """The tenant's tokens, oldest first (``NotFound`` for an unknown tenant)."""
    await registry.tenant_id(con, tenant)
    rows = await con.fetch(
        f"SELECT {_COLUMNS} FROM api_tokens k JOIN tenants t ON t.id = k.tenant_id "
        "WHERE t.slug = $1 ORDER BY k.id LIMIT $2", tenant, limit)
    return [_info(r) for r in rows]


async def get_token(con: asyncpg.Connection, tenant: str, token_id: int) -> TokenInfo:
    row = await con.fetchrow(
        f"SELECT {_COLUMNS} FROM api_tokens k JOIN tenants t ON t.id = k.tenant_id "
        "WHERE t.slug = $1 AND k.id = $2", tenant, token_id)
    if row is None:
        raise NotFound(f"no token {token_id} of tenant {tenant!r}")
    return _info(row)


async def revoke_token(con: asyncpg.Connection, *, tenant: str, token_id: int, actor: str) -> TokenInfo:
    """Revoke the tenant's token (audited); a token revoked already stays as it was."""
    async with con.transaction():
        revoked = await con.fetchval(
            """UPDATE api_tokens k SET revoked_at = now() FROM tenants t
               WHERE t.id = k.tenant_id AND t.slug = $1 AND k.id = $2 AND k.revoked_at IS NULL
               RETURNING k.id""", tenant, token_id)
        if revoked is not None:
            await registry.audit(con, actor, tenant, "token.revoke", f"token:{token_id}")
        return await get_token(con, tenant, token_id)


def parse_token_id(text: str) -> int:
    """A token id in ASCII digits within the column's range; ``ValueError`` otherwise."""
    if not _ID.match(text) or not 1 <= int(text) < 2**31:
        raise ValueError(f"a token id is a positive whole number, got {text!r}")
    return int(text)


def utc_minute(value: datetime | None) -> str:
    """``2026-11-30T12:00Z``, or ``-`` for none (how the token table shows a time)."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def token_table(tokens: Sequence[TokenInfo]) -> str:
    """The tokens as aligned text columns, times in UTC to the minute (pure)."""
    rows = [COLUMNS] + [
        (str(t.id), t.role, ",".join(t.sites) or "*", t.label or "-", utc_minute(t.created_at),
         utc_minute(t.expires_at), utc_minute(t.last_used_at), t.state if t.state != "revoked" else
         f"revoked {utc_minute(t.revoked_at)}")
        for t in tokens]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)
