"""``parkbazaar broker …``: the broker's config and identities, from the registry.

``config`` writes ``mosquitto.conf``, ``passwd`` and ``acl``; ``sync`` keeps
``passwd``/``acl`` equal to the registry and makes the broker reload them;
``account`` manages service accounts; ``gateway`` issues, rotates and retires
a gateway's credentials. The logic is in ``dashboard_api.broker`` (pure),
``dashboard_api.broker_registry`` and ``dashboard_api.broker_sync``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from dashboard_api import DashboardError, registry
from dashboard_api import broker_registry as accounts
from dashboard_api.broker import SERVICE_ROLES, BrokerLayout, TlsFiles, gateway_username, layout_for
from dashboard_api.broker_sync import Owner, pid_from_file, run_sync, write_config
from parkbazaar.clikit import fail, run_on_database, run_until_signalled, settings_from

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: Sub) -> None:
    p = subparsers.add_parser("broker", help="the MQTT broker's config and identities, from the registry")
    sub = p.add_subparsers(dest="broker_command", metavar="ACTION", required=True)
    _config_parser(sub)
    _sync_parser(sub)
    _account_parsers(sub)
    _gateway_parsers(sub)


def _config_parser(sub: Sub) -> None:
    c = sub.add_parser(
        "config", help="write DIR/mosquitto.conf, passwd and acl from the registry",
        description="Write DIR/mosquitto.conf, passwd and acl from the registry. Listeners: "
                    "--listen is the gateways' (a client's id is replaced by its username, so "
                    "none can take over another's session); --services and --local are the "
                    "services' (ingest workers of one account each keep their own client id): "
                    "--services across the network (TLS with the broker's certificate when "
                    "given), --local plain on this host. See docs/deploy.md.")
    c.add_argument("--out", type=Path, required=True, metavar="DIR")
    c.add_argument("--listen", metavar="HOST:PORT",
                   help="the gateways' listener, where a client's id is its username (default "
                        "127.0.0.1:1883; with --tls-cert 0.0.0.0:8883, TLS)")
    c.add_argument("--services", metavar="HOST:PORT",
                   help="also a listener for services in other containers or hosts (ingest "
                        "workers, several of one account, each with its own client id), e.g. "
                        "0.0.0.0:8884: TLS with --tls-cert/--tls-key when given (passwords, never "
                        "a client certificate), plain otherwise; keep it off the gateways' network")
    c.add_argument("--local", metavar="HOST:PORT",
                   help="also a plain listener, e.g. 127.0.0.1:1883 for ingest on this host")
    c.add_argument("--tls-cert", type=Path, metavar="F", help="the broker's certificate (PEM)")
    c.add_argument("--tls-key", type=Path, metavar="F", help="its private key (PEM)")
    c.add_argument("--tls-ca", type=Path, metavar="F", help="the CA that signs client certificates")
    c.add_argument("--require-client-cert", action="store_true",
                   help="mutual TLS: a client certificate signed by --tls-ca is required and its "
                        "CN is the username (tenant/gateway)")
    c.add_argument("--user", default=None,
                   help="the user mosquitto runs as (owns the files; default: whoever runs this)")
    c.add_argument("--log-file", type=Path, metavar="F", help="broker log file (default: stderr)")
    c.set_defaults(func=cmd_config)


def _sync_parser(sub: Sub) -> None:
    s = sub.add_parser("sync", help="keep DIR/passwd and acl equal to the registry; SIGHUP the broker")
    s.add_argument("--out", type=Path, required=True, metavar="DIR")
    who = s.add_mutually_exclusive_group()
    who.add_argument("--pid", type=int, help="the broker's process id")
    who.add_argument("--pid-file", type=Path, metavar="F",
                     help="file holding it (default: DIR/mosquitto.pid, written by the generated config)")
    s.add_argument("--interval", type=float, default=30.0, metavar="S",
                   help="full check every S seconds besides the notifications (default 30)")
    s.add_argument("--user", default=None,
                   help="the user mosquitto runs as (default: whoever owns DIR/passwd now)")
    s.add_argument("--once", action="store_true", help="sync once and exit")
    s.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics (checks, reloads, retries) on 127.0.0.1:PORT")
    s.set_defaults(func=cmd_sync)


def _account_parsers(sub: Sub) -> None:
    a = sub.add_parser("account", help="service accounts (ingest, api, operator)")
    acts = a.add_subparsers(dest="account_command", metavar="ACTION", required=True)
    c = acts.add_parser("create", help='create one; prints {"username": …, "secret": …} (shown once)')
    c.add_argument("name")
    c.add_argument("--role", required=True, choices=SERVICE_ROLES)
    c.set_defaults(func=cmd_account, action="create")
    for action, help_ in (("rotate", "a new secret (the old one stops working)"),
                          ("retire", "remove the account")):
        r = acts.add_parser(action, help=help_)
        r.add_argument("name")
        r.set_defaults(func=cmd_account, action=action)
    ls = acts.add_parser("list", help="live accounts (JSON lines)")
    ls.set_defaults(func=cmd_account, action="list", name=None)


def _gateway_parsers(sub: Sub) -> None:
    g = sub.add_parser("gateway", help="a gateway's MQTT credentials")
    acts = g.add_subparsers(dest="gateway_command", metavar="ACTION", required=True)
    for action, help_ in (("issue", "new credentials, printed once as JSON (the old ones stop working)"),
                          ("rotate", "the same as issue"),
                          ("retire", "revoke its credentials (the gateway stays provisioned)")):
        r = acts.add_parser(action, help=help_)
        r.add_argument("gateway", metavar="TENANT/GATEWAY")
        r.set_defaults(func=cmd_gateway, action=action)


def _run_db(args: argparse.Namespace, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    """``work(connection)``'s result; a refusal ends the process with 2, a lost database with 1."""
    return run_on_database(args, work, command=f"broker {args.broker_command}",
                           refused=(DashboardError,))


def _fail(args: argparse.Namespace, exc: BaseException, code: int) -> int:
    return fail(f"broker {args.broker_command}", exc, code)


def _user(name: str | None) -> str:
    return name or pwd.getpwuid(os.geteuid()).pw_name


def layout_from(args: argparse.Namespace) -> BrokerLayout:
    """The broker's layout from ``config``'s options; ``ValueError`` on a bad combination."""
    tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_ca, args.require_client_cert)
    return layout_for(args.out, _user(args.user), listen=args.listen, services=args.services,
                      local=args.local, tls=tls, log_file=args.log_file)


def cmd_config(args: argparse.Namespace) -> int:
    try:
        layout = layout_from(args)
        owner = Owner.named(layout.user)
    except (ValueError, DashboardError) as exc:
        return _fail(args, exc, 2)
    prefix = settings_from(args).topic_prefix
    written = _run_db(args, lambda con: write_config(con, layout, prefix, owner))
    print(f"wrote {', '.join(written) or 'nothing (unchanged)'} in {layout.out}; "
          f"run: mosquitto -c {layout.path('mosquitto.conf')}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    out = args.out.resolve()
    pid = (lambda: args.pid) if args.pid else pid_from_file(args.pid_file or out / "mosquitto.pid")
    try:
        owner = Owner.named(args.user) if args.user else Owner.of(out / "passwd")
    except DashboardError as exc:
        return _fail(args, exc, 2)

    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1")

    async def main(stop: asyncio.Event) -> None:
        if args.once:
            stop.set()  # _follow syncs once before it looks at stop
        await run_sync(settings.dsn, out, settings.topic_prefix, owner=owner, pid=pid, stop=stop,
                       interval_s=args.interval)

    try:
        return run_until_signalled(main)
    except DashboardError as exc:
        return _fail(args, exc, 1)


def cmd_account(args: argparse.Namespace) -> int:
    async def work(con: asyncpg.Connection) -> Any:
        if args.action == "create":
            return await accounts.create_account(con, args.name, args.role)
        if args.action == "rotate":
            return await accounts.rotate_account(con, args.name)
        if args.action == "retire":
            return await accounts.retire_account(con, args.name)
        return await accounts.accounts(con)

    result = _run_db(args, work)
    if args.action in ("create", "rotate"):
        print(json.dumps({"username": args.name, "secret": result}))
    elif args.action == "list":
        for row in result:
            print(json.dumps(row, default=str))
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    tenant, _, gateway = args.gateway.partition("/")
    if not tenant or not gateway:
        return _fail(args, ValueError(f"expected TENANT/GATEWAY, got {args.gateway!r}"), 2)

    async def work(con: asyncpg.Connection) -> str | None:
        if args.action == "retire":
            await registry.revoke_credentials(con, "cli", tenant, gateway)
            return None
        return await registry.rotate_credentials(con, "cli", tenant, gateway)

    secret = _run_db(args, work)
    if secret is not None:
        print(json.dumps({"gateway": gateway, "username": gateway_username(tenant, gateway),
                          "secret": secret}))
    return 0
