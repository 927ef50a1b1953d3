"""``parkbazaar token create|list|revoke``: API tokens of market managers and operators.

The same operations as ``/v1/admin/{tenant}/tokens``, straight on the database
(for the first admin token of a tenant, and for an operator without one).
Exit codes: 0 done, 2 a bad argument or an unknown tenant, site or token,
1 the database failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg

from dashboard_api import NotFound
from dashboard_api.auth import issue_token
from dashboard_api.tokens import (
    expiry_from,
    list_tokens,
    parse_token_id,
    revoke_token,
    token_table,
    utc_minute,
)
from parkbazaar.clikit import run_on_database

T = TypeVar("T")


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
    """An argparse type: a token id (``dashboard_api.tokens.parse_token_id``)."""
    try:
        return parse_token_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _run(args: argparse.Namespace, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``action`` on the configured database; exit 2 for an unknown tenant, site or token."""
    return run_on_database(args, action, command=f"token {args.token_command}",
                           refused=(LookupError, NotFound))


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
    print(issued.token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    found = _run(args, lambda con: list_tokens(con, args.tenant))
    print(json.dumps([t.model_dump(mode="json") for t in found], indent=2) if args.json
          else token_table(found))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    done = _run(args, lambda con: revoke_token(con, tenant=args.tenant, token_id=args.id, actor="cli"))
    print(f"token {done.id} ({done.role} of {done.tenant}) revoked at {utc_minute(done.revoked_at)}")
    return 0
