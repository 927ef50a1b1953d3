"""The database of a run: one connection helper, the database itself, its schema and sites.

``connected(dsn)`` is the one connect-then-close helper of the command line and
the stack (services use pools); ``require_schema`` refuses a database that was
never migrated, naming it. ``run_database`` yields the configured
database, or a database on an embedded PostgreSQL in the data directory;
``prepare`` migrates it (``ingest.migrate``) and provisions the site files
(``dashboard_api.provision``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg

from dashboard_api.provision import provision
from dashboard_api.queries import schema_version
from ingest.migrate import migrate
from occupancy.config import Settings
from occupancy.sitefile import SiteFile
from stack import SchemaMissing
from stack.embedded import EmbeddedPostgres, dsn_with_database
from stack.running import public_url

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to ``dsn`` for the block, closed after it whatever happens."""
    con = await asyncpg.connect(dsn)
    try:
        yield con
    finally:
        await con.close()


async def require_schema(con: asyncpg.Connection, dsn: str) -> int:
    """The schema version of the database ``con`` is on; ``SchemaMissing`` naming ``dsn`` when
    it was never migrated."""
    version = await schema_version(con)
    if version is None:
        raise SchemaMissing(f"no parkbazaar schema at {public_url(dsn)}: run `parkbazaar migrate`")
    return version


@contextlib.asynccontextmanager
async def run_database(settings: Settings, data_dir: Path, name: str, *,
                       fresh: bool) -> AsyncIterator[str]:
    """The configured database's DSN; else database ``name`` on an embedded server in
    ``data_dir/postgres`` (created when missing; dropped and created when ``fresh``)."""
    if settings.database_url:
        yield settings.database_url
        return
    started = time.monotonic()
    server = EmbeddedPostgres(data_dir / "postgres").start()
    log.info("embedded PostgreSQL ready in %.1fs (%s)", time.monotonic() - started, server.data_dir)
    try:
        yield await own_database(server.dsn(), name, fresh=fresh)
    finally:
        server.stop()


async def own_database(server_dsn: str, name: str, *, fresh: bool) -> str:
    """Database ``name`` on the server of ``server_dsn``, created if missing (``fresh``: anew)."""
    async with connected(server_dsn) as con:
        if fresh:
            await con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not await con.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await con.execute(f'CREATE DATABASE "{name}"')
    return dsn_with_database(server_dsn, name)


async def prepare(dsn: str, site_files: Sequence[SiteFile], *, flavor: str = "auto") -> None:
    """Migrate the database and provision every site file (both idempotent)."""
    async with connected(dsn) as con:
        await migrate(con, flavor=flavor)
        for site_file in site_files:
            log.info("provisioned: %s", await provision(con, site_file))
