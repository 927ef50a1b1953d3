"""A database of a test's own on the test server: created, yielded as a DSN, dropped."""

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
def scratch_database(admin_dsn: str, prefix: str = "pbt") -> Iterator[str]:
    """A fresh, empty database (``{prefix}_…``); dropped on exit, connections or not.
    For synchronous fixtures: it runs its own event loop."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield dsn_with_database(admin_dsn, name)
    finally:
        asyncio.run(_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
