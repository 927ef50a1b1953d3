"""Databases of a test's own, and the counts tests read back from them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import asyncpg

from stack.embedded import dsn_with_database


async def _admin(admin_dsn: str, sql: str) -> None:
    con = await asyncpg.connect(admin_dsn)
    try:
        await con.execute(sql)
    finally:
        await con.close()


@contextlib.contextmanager
def scratch_database(admin_dsn: str, prefix: str = "pbt", template: str | None = None) -> Iterator[str]:
    """A fresh database (``{prefix}_…``), empty or a copy of the database ``template``
    (which nobody may be connected to); dropped on exit, connections or not.
    For synchronous fixtures: it runs its own event loop."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield dsn_with_database(admin_dsn, name)
    finally:
        asyncio.run(_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def database_name(dsn: str) -> str:
    """The database a DSN names (``…/name`` or ``…/name?host=…``)."""
    return dsn.partition("?")[0].rsplit("/", 1)[1]


async def count(con: asyncpg.Connection, sql: str, *args: object) -> int:
    """The single value ``sql`` selects, as an int (NULL is 0)."""
    value = await con.fetchval(sql, *args)
    return int(value or 0)


async def event_rows(con: asyncpg.Connection) -> int:
    """How many rows ``occupancy_events`` holds."""
    return await count(con, "SELECT count(*) FROM occupancy_events")


async def has_seq(con: asyncpg.Connection, seq: int) -> bool:
    """True once an event with this ``seq`` is stored (a marker that what came before is in)."""
    return await count(con, "SELECT count(*) FROM occupancy_events WHERE seq = $1", seq) > 0
