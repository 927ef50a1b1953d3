"""``/v1/admin/{tenant}/tokens``: an admin token lists, issues and revokes its tenant's API tokens.

The same as ``parkbazaar token list|create|revoke``. A new token is in the answer
that created it and nowhere else; listings show what a token may do and when it
was made, last used, expires or was revoked. Every write is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from dashboard_api import Conflict, NotFound
from dashboard_api.auth import Role, issue_token
from dashboard_api.bodies import SITE_SLUG
from dashboard_api.deps import Admin, Connection, Now, TenantPath
from dashboard_api.schemas import problems
from dashboard_api.tokens import LIST_MAX, TokenInfo, check_expiry, get_token, list_tokens, revoke_token

router = APIRouter(prefix="/v1/admin/{tenant}/tokens", tags=["operators"], responses=problems(429, 503))


def _responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """``problems(...)``, with the 401/403 these routes share and what ``described`` says
    more precisely (keys ``s404``, ``s409``)."""
    out = problems(401, 403, *statuses)
    out[401]["description"] = "no token, or not a valid one (unknown, revoked, expired)"
    out[403]["description"] = "not an admin token of this tenant"
    for key, text in described.items():
        out[int(key[1:])]["description"] = text
    return out


READ = _responses(404)
ONE = _responses(404, s404="no such token of this tenant")
CREATE = _responses(400, 404, 413, s404="a site in `sites` is not one of this tenant's")
REVOKE = _responses(404, 409, s404="no such token of this tenant",
                    s409="the token named is the one making the request")
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"  # any script, no control characters (NUL, newlines, C1)
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the token's id (from the listing)")]


class TokenIn(BaseModel):
    """A token to issue: its role, a manager's sites (none: every site), a note, an expiry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    sites: list[Annotated[str, Field(pattern=SITE_SLUG)]] = Field(
        default=[], max_length=100, description="a manager's sites; empty: every site of the tenant")
    label: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_CONTROL,
                              description="whose token it is")
    expires_at: AwareDatetime | None = Field(
        default=None, description="when it stops working (with a UTC offset; at most 10 years ahead); "
                                  "absent or null: never")

    @model_validator(mode="after")
    def _admin_has_no_sites(self) -> TokenIn:
        if self.role == "admin" and self.sites:
            raise ValueError("an admin token covers every site of its tenant: `sites` is for managers")
        return self


class TokenCreated(TokenInfo):
    """The new token's row, and the token itself: shown this once, only its hash is kept."""

    token: str


@router.get("", responses=READ, summary="The tenant's API tokens (never the tokens themselves)")
async def list_all(_: Admin, con: Connection, tenant: TenantPath,
                   limit: Annotated[int, Query(ge=1, le=LIST_MAX)] = LIST_MAX) -> list[TokenInfo]:
    """Oldest first, with `state` `active`, `revoked` or `expired`, and `last_used_at`
    (precise to a minute)."""
    return await list_tokens(con, tenant, limit=limit)


@router.post("", status_code=201, responses=CREATE, summary="Issue a token; it is shown once")
async def create(who: Admin, con: Connection, now: Now, tenant: TenantPath, body: TokenIn) -> TokenCreated:
    """A manager or admin token of this tenant (an admin issues for its own tenant only)."""
    expires_at = None
    if body.expires_at is not None:
        try:
            expires_at = check_expiry(body.expires_at, now)
        except ValueError as exc:
            raise RequestValidationError([{"type": "value_error", "loc": ("body", "expires_at"),
                                           "msg": str(exc), "input": body.expires_at.isoformat()}]) from exc
    try:
        issued = await issue_token(con, tenant=tenant, role=body.role, sites=tuple(body.sites),
                                   label=body.label, expires_at=expires_at, actor=who.actor)
    except LookupError as exc:
        raise NotFound(exc.args[0]) from exc
    info = await get_token(con, tenant, issued.id)
    return TokenCreated(**info.model_dump(), token=issued.token)


@router.get("/{token_id}", responses=ONE, summary="One API token")
async def read(_: Admin, con: Connection, tenant: TenantPath, token_id: TokenId) -> TokenInfo:
    return await get_token(con, tenant, token_id)


@router.delete("/{token_id}", responses=REVOKE, summary="Revoke a token (idempotent)")
async def revoke(who: Admin, con: Connection, tenant: TenantPath, token_id: TokenId) -> TokenInfo:
    """The token is refused from now on, and its open streams end within seconds. Revoking a
    revoked token changes nothing (200, its first `revoked_at`). A token cannot revoke itself
    (409): an operator would lock the tenant out with its last admin token; use another
    admin token, or `parkbazaar token revoke`."""
    if token_id == who.token_id:
        raise Conflict("a token cannot revoke itself: use another admin token or `parkbazaar token revoke`")
    return await revoke_token(con, tenant=tenant, token_id=token_id, actor=who.actor)
