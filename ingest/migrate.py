"""Numbered, forward-only schema migrations, applied by ``parkbazaar migrate``.

Files in ``ingest/migrations`` are named ``NNN_name.sql`` (both flavors),
``NNN_name.plain.sql`` or ``NNN_name.timescale.sql`` (one flavor each). The
flavor is chosen once, at the first migration: TimescaleDB where the extension
is available, plain PostgreSQL otherwise, and recorded in
``schema_migrations``. Each migration runs in its own transaction under an
advisory lock, so two migrators never interleave and a rerun does nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

import asyncpg

from ingest import MigrationError

log = logging.getLogger(__name__)

_LOCK_KEY = 0x70A2_B0A2  # advisory lock id for migrations
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+?)(?:\.(plain|timescale))?\.sql$")


class Flavor(StrEnum):
    PLAIN = "plain"
    TIMESCALE = "timescale"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    flavor: Flavor | None
    sql: str


def bundled_migrations() -> list[Migration]:
    """Every migration shipped in the package, ordered by version."""
    found = []
    for entry in resources.files("ingest.migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            flavor = Flavor(m.group(3)) if m.group(3) else None
            found.append(Migration(int(m.group(1)), m.group(2), flavor, entry.read_text("utf-8")))
    return sorted(found, key=lambda x: (x.version, x.flavor or ""))


def plan(migrations: list[Migration], applied: set[int], flavor: Flavor) -> list[Migration]:
    """The migrations still to apply for a flavor, in order (pure)."""
    todo = [m for m in migrations if m.version not in applied and m.flavor in (None, flavor)]
    versions = [m.version for m in todo]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"two migrations share a version for flavor {flavor}")
    return todo


async def _choose_flavor(con: asyncpg.Connection, wanted: str) -> Flavor:
    recorded = await con.fetchval("SELECT flavor FROM schema_migrations LIMIT 1")
    if recorded:
        if wanted not in ("auto", recorded):
            raise MigrationError(f"database is {recorded}, asked for {wanted}")
        return Flavor(recorded)
    available = await con.fetchval(
        "SELECT count(*) > 0 FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    if wanted == Flavor.TIMESCALE or (wanted == "auto" and available):
        await con.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        return Flavor.TIMESCALE
    return Flavor.PLAIN


async def migrate(con: asyncpg.Connection, *, flavor: str = "auto") -> list[str]:
    """Apply what is missing; returns the names applied (empty on a rerun)."""
    await con.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await con.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version int PRIMARY KEY, name text NOT NULL, flavor text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        chosen = await _choose_flavor(con, flavor)
        applied = {r["version"] for r in await con.fetch("SELECT version FROM schema_migrations")}
        done = []
        for m in plan(bundled_migrations(), applied, chosen):
            await _apply(con, m, chosen)
            done.append(f"{m.version:03d}_{m.name}")
        return done
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def migrate_dsn(dsn: str, flavor: str = "auto") -> list[str]:
    """``migrate`` on a connection of its own to ``dsn`` (``parkbazaar migrate``, tests)."""
    con = await asyncpg.connect(dsn)
    try:
        return await migrate(con, flavor=flavor)
    finally:
        await con.close()


async def _apply(con: asyncpg.Connection, m: Migration, flavor: Flavor) -> None:
    log.info("applying migration %03d_%s (%s)", m.version, m.name, flavor)
    try:
        async with con.transaction():
            await con.execute(m.sql)
            await con.execute(
                "INSERT INTO schema_migrations (version, name, flavor) VALUES ($1, $2, $3)",
                m.version, m.name, flavor.value,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"migration {m.version:03d}_{m.name} failed: {exc}") from exc


async def schema_flavor(con: asyncpg.Connection) -> Flavor:
    """The flavor the database was migrated with."""
    value = await con.fetchval("SELECT flavor FROM schema_migrations LIMIT 1")
    if value is None:
        raise MigrationError("database is not migrated: run `parkbazaar migrate`")
    return Flavor(value)
