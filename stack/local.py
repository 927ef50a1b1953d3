"""``local_stack(settings, spec)``: the one way to bring the chain up on this machine.

How this works: what ``settings`` configures is used as it is (a database URL,
a broker URL); what it leaves out is started here — an embedded PostgreSQL
in ``spec.data_dir``, a broker of our own with credentials issued from the
registry (``stack.broker``). The database is migrated and the site files
provisioned. Then ingest and the API start in this process, unless
``spec.external_api`` names a running deployment (then neither does) or the
spec turns them off (benches run them as processes of their own). The
``Stack`` yielded carries the settings every client of this chain should use.
On exit everything stops in reverse order.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from occupancy.config import Settings
from occupancy.sitefile import SiteFile
from stack.broker import BrokerKind, Logins, run_broker
from stack.db import prepare, run_database
from stack.embedded import free_port
from stack.services import ApiServer, IngestHandle


@dataclass(frozen=True)
class StackSpec:
    """What to run besides the configured services, and where."""

    data_dir: Path  # embedded services' data, credentials.json, gateway outboxes
    site_files: Sequence[SiteFile] = ()
    broker: BrokerKind = "auto"  # when no mqtt_url is configured: auto = mosquitto if installed
    database: str = "parkbazaar"  # the database on an embedded server
    fresh: bool = False  # drop and create that database first
    flavor: str = "auto"  # of the migrations: auto (TimescaleDB where available), plain, timescale
    ingest: bool = True
    api: bool = True
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    external_api: str | None = None  # a running API: run neither ingest nor the API here


@dataclass
class Stack:
    """A running chain: the settings its clients use, the API's URL, the in-process ingest."""

    settings: Settings  # database_url and mqtt_url filled in
    data_dir: Path
    api: str | None
    ingest: IngestHandle | None
    gateways: Logins = field(default_factory=dict)  # each gateway's own broker login, if issued
    credentials: Path | None = None  # where the issued secrets were written

    @property
    def dsn(self) -> str:
        return self.settings.dsn


@contextlib.asynccontextmanager
async def local_stack(settings: Settings, spec: StackSpec) -> AsyncIterator[Stack]:
    """See the module docstring."""
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as exits:
        dsn = await exits.enter_async_context(
            run_database(settings, spec.data_dir, spec.database, fresh=spec.fresh))
        await prepare(dsn, spec.site_files, flavor=spec.flavor)
        broker = await exits.enter_async_context(
            run_broker(settings, spec.broker, spec.data_dir, dsn, spec.site_files))
        ingest_cfg = settings.ingest.model_copy(update={"protocol": broker.protocol})
        run = settings.model_copy(update={"database_url": dsn, "mqtt_url": broker.url,
                                          "ingest": ingest_cfg})
        external = spec.external_api.rstrip("/") if spec.external_api else None
        stack = Stack(run, spec.data_dir, external, None, broker.gateways, broker.credentials)
        if spec.external_api is None:
            await _start_services(stack, spec, exits)
        yield stack


async def _start_services(stack: Stack, spec: StackSpec, exits: contextlib.AsyncExitStack) -> None:
    if spec.ingest:
        ingest = IngestHandle(stack.settings)
        await ingest.start()
        exits.push_async_callback(ingest.stop)
        stack.ingest = ingest
    if spec.api:
        server = ApiServer(stack.settings, spec.host, spec.port or free_port())
        await server.start()
        exits.push_async_callback(server.stop)
        stack.api = server.url
