"""``parkbazaar token create|list|revoke``: API tokens of market managers and operators.

The same operations as ``/v1/admin/{tenant}/tokens``, straight on the database
(for the first admin token of a tenant, and for an operator without one).
Exit codes: 0 done, 2 a bad argument or an unknown tenant, site or token,
1 the database failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg

from dashboard_api import NotFound
from dashboard_api.auth import issue_token
from dashboard_api.tokens import TokenInfo, expiry_from, list_tokens, revoke_token
from parkbazaar.clikit import settings_from

T = TypeVar("T")
_ID = re.compile(r"^[0-9]{1,10}$")
COLUMNS = ("ID", "ROLE", "SITES", "LABEL", "CREATED", "EXPIRES", "LAST USED", "STATE")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("token", help="API tokens of market managers and operators")
    tok = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = tok.add_parser("create", help="create a token and print it (once: only its hash is kept)")
    c.add_argument("--tenant", required=True, help="the tenant the token is of")
    c.add_argument("--role", required=True, choices=["manager", "admin"])
    c.add_argument("--site", action="append", default=[], metavar="SITE",
                   help="a site a manager may read (repeatable; none: every site of the tenant)")
    c.add_argument("--label", help="a note on whose token it is")
    when = c.add_mutually_exclusive_group()
    when.add_argument("--expires-in", metavar="DURATION",
                      help="lifetime: 90m, 12h, 30d, 2w (default: the token never expires)")
    when.add_argument("--expires-at", metavar="TIME",
                      help="end as ISO 8601 with a UTC offset, e.g. 2027-03-21T00:00:00+03:30")
    c.set_defaults(func=cmd_token_create)
    ls = tok.add_parser("list", help="the tenant's tokens: role, sites, created, expires, last used, "
                                     "state (never the token)")
    ls.add_argument("--tenant", required=True)
    ls.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    ls.set_defaults(func=cmd_token_list)
    r = tok.add_parser("revoke", help="revoke a token now (its open streams end within seconds)")
    r.add_argument("id", type=token_id, metavar="ID", help="the token's id, from `token list`")
    r.add_argument("--tenant", required=True, help="the tenant the token is of")
    r.set_defaults(func=cmd_token_revoke)


def token_id(text: str) -> int:
    """An argparse type: a token id in ASCII digits, within the column's range."""
    if not _ID.match(text) or not 1 <= int(text) < 2**31:
        raise argparse.ArgumentTypeError(f"a token id is a positive whole number, got {text!r}")
    return int(text)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def token_table(tokens: Sequence[TokenInfo]) -> str:
    """The tokens as aligned text columns, times in UTC to the minute (pure)."""
    rows = [COLUMNS] + [
        (str(t.id), t.role, ",".join(t.sites) or "*", t.label or "-", _when(t.created_at),
         _when(t.expires_at), _when(t.last_used_at), t.state if t.state != "revoked" else
         f"revoked {_when(t.revoked_at)}")
        for t in tokens]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _run(args: argparse.Namespace, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T | int:
    """``action`` on a connection of the configured database; an exit code when it failed."""
    settings = settings_from(args)

    async def run() -> T:
        con = await asyncpg.connect(settings.dsn)
        try:
            return await action(con)
        finally:
            await con.close()

    try:
        return asyncio.run(run())
    except (LookupError, NotFound) as exc:
        print(f"parkbazaar token {args.token_command}: {exc.args[0]}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"parkbazaar token {args.token_command}: {exc}", file=sys.stderr)
        return 1


def cmd_token_create(args: argparse.Namespace) -> int:
    try:
        expires_at = expiry_from(expires_in=args.expires_in, expires_at=args.expires_at,
                                 now=datetime.now(UTC))
    except ValueError as exc:
        print(f"parkbazaar token create: {exc}", file=sys.stderr)
        return 2
    issued = _run(args, lambda con: issue_token(
        con, tenant=args.tenant, role=args.role, sites=tuple(args.site), label=args.label,
        expires_at=expires_at, actor="cli"))
    if isinstance(issued, int):
        return issued
    print(issued.token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    found = _run(args, lambda con: list_tokens(con, args.tenant))
    if isinstance(found, int):
        return found
    print(json.dumps([t.model_dump(mode="json") for t in found], indent=2) if args.json
          else token_table(found))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    done = _run(args, lambda con: revoke_token(con, tenant=args.tenant, token_id=args.id, actor="cli"))
    if isinstance(done, int):
        return done
    print(f"token {done.id} ({done.role} of {done.tenant}) revoked at {_when(done.revoked_at)}")
    return 0
