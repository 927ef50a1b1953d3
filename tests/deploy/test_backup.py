"""Backups restore (docs/backup.md): the restore drill.

Each test starts real PostgreSQL servers with deploy/postgres/postgresql.conf
and pg_hba.conf (WAL archiving on), backs one up with deploy/backup/pb-backup,
restores into a fresh server with deploy/backup/pb-restore, and checks that the
API serves the same counts from the restored database and that every table
holds the same rows.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ingest.migrate import migrate_dsn
from tests.support.api import app_for, asgi_client, observe, seed_city
from tests.support.pgcluster import REPO, Cluster
from tests.support.waiting import wait_until_sync

BACKUP = REPO / "deploy" / "backup" / "pb-backup"
RESTORE = REPO / "deploy" / "backup" / "pb-restore"
SPACES = [("lot-a", f"a{i}") for i in range(1, 5)] + [("market", f"stall-00{i}") for i in range(1, 4)]
# what the API says about the restored city: counts, per-space states, readiness
API_PATHS = ("/v1/sites", "/v1/sites/testcity/lot-a", "/v1/sites/testcity/market",
             "/v1/sites/testcity/lot-a/spaces", "/v1/sites/testcity/market/spaces",
             "/v1/sites/othercity/lot-z", "/readyz")

pytestmark = pytest.mark.slow


@pytest.fixture
def clusters() -> Iterator[list[Cluster]]:
    """Servers this test starts; all stopped and removed at the end."""
    made: list[Cluster] = []
    yield made
    for c in made:
        c.remove()


def new_cluster(clusters: list[Cluster], *, init: bool = True) -> Cluster:
    c = Cluster()
    clusters.append(c)
    return c.initdb() if init else c


async def populate(dsn: str, first_seq: int, count: int, *, flip: bool = False) -> None:
    """``count`` events over the spaces, as ingest writes them, within the last four minutes."""
    con = await asyncpg.connect(dsn)
    try:
        t0 = datetime.now(UTC) - timedelta(minutes=4)
        for i in range(count):
            seq = first_seq + i
            site, space = SPACES[seq % len(SPACES)]
            state = ("occupied", "free")[(seq // len(SPACES) + flip) % 2]
            await observe(con, site, space, state, t0 + timedelta(seconds=i * 0.2), seq)
        await con.execute(
            "INSERT INTO dead_letters (topic, payload, reason, payload_bytes, payload_sha256) "
            "VALUES ('t', '\\x00'::bytea, 'malformed', 1, sha256('\\x00'::bytea))")
    finally:
        await con.close()


async def api_view(dsn: str) -> dict[str, Any]:
    async with asgi_client(app_for(dsn)) as client:
        view = {}
        for path in API_PATHS:
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
            view[path] = response.json()
        return view


async def table_rows(dsn: str) -> dict[str, int]:
    """Rows of every table (partitions too) in the public schema."""
    con = await asyncpg.connect(dsn)
    try:
        names = await con.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1")
        return {r["relname"]: await con.fetchval(f'SELECT count(*) FROM "{r["relname"]}"') for r in names}
    finally:
        await con.close()


async def snapshot(dsn: str) -> tuple[dict[str, Any], dict[str, int]]:
    return await api_view(dsn), await table_rows(dsn)


def make_database(c: Cluster) -> str:
    c.psql("CREATE DATABASE parkbazaar")
    return c.dsn("parkbazaar")


def prepared_source(clusters: list[Cluster]) -> tuple[Cluster, str]:
    """A server on the deployment's config with a migrated, provisioned database."""
    source = new_cluster(clusters).start()
    dsn = make_database(source)
    asyncio.run(migrate_dsn(dsn, "plain"))
    asyncio.run(seed_city(dsn))
    return source, dsn


def backup(c: Cluster, command: str, **env: str) -> None:
    c.run("sh", BACKUP, command, env={"PGDATABASE": "parkbazaar", "BACKUP_DIR": str(c.root / "backups"),
                                      "ARCHIVE_DIR": str(c.archive), **env})


def wait_archived(c: Cluster) -> None:
    """Switch to a new WAL segment and wait until the archiver has copied the old one."""
    segment = c.psql("SELECT pg_walfile_name(pg_switch_wal())")
    wait_until_sync((c.archive / segment).exists, 60, lambda: f"{segment} archived\n{c.log()}")


def test_dump_restores_into_a_fresh_server_and_the_api_serves_the_same_counts(
        clusters: list[Cluster]) -> None:
    source, dsn = prepared_source(clusters)
    asyncio.run(populate(dsn, 1, 300))
    before = asyncio.run(snapshot(dsn))
    backup(source, "dump")
    dumps = sorted((source.root / "backups" / "dump").glob("parkbazaar-*.dump"))
    assert len(dumps) == 1 and dumps[0].with_name(dumps[0].stem + ".globals.sql").exists()

    target = new_cluster(clusters).start()
    restored = make_database(target)
    target.run("sh", RESTORE, "dump", dumps[0], env={"PGDATABASE": "parkbazaar"})

    after = asyncio.run(snapshot(restored))
    assert after == before
    assert before[1]["occupancy_events"] == 300 and before[1]["dead_letters"] == 1
    lot = before[0]["/v1/sites/testcity/lot-a"]
    assert (lot["total"], lot["free"] + lot["occupied"]) == (4, 4)


def test_base_backup_and_wal_recover_to_a_point_in_time(clusters: list[Cluster]) -> None:
    source, dsn = prepared_source(clusters)
    asyncio.run(populate(dsn, 1, 100))
    backup(source, "base")
    asyncio.run(populate(dsn, 101, 100))
    target_time = source.psql("SELECT clock_timestamp()", "parkbazaar")
    at_target = asyncio.run(snapshot(dsn))
    asyncio.run(populate(dsn, 201, 100, flip=True))  # committed after the target time
    final = asyncio.run(snapshot(dsn))
    assert final[0] != at_target[0], "the later events must change what the API says"
    wait_archived(source)
    base = next(p for p in (source.root / "backups" / "base").iterdir() if not p.name.startswith("."))
    restore_env = {"ARCHIVE_DIR": str(source.archive)}

    to_time = new_cluster(clusters, init=False)
    to_time.run("sh", RESTORE, "base", base, to_time.data, target_time, env=restore_env)
    to_time.start().wait_promoted()
    assert asyncio.run(snapshot(to_time.dsn("parkbazaar"))) == at_target
    assert at_target[1]["occupancy_events"] == 200

    to_end = new_cluster(clusters, init=False)
    to_end.run("sh", RESTORE, "base", base, to_end.data, env=restore_env)
    to_end.start().wait_promoted()
    assert asyncio.run(snapshot(to_end.dsn("parkbazaar"))) == final


def test_prune_keeps_the_newest_base_backup_and_the_wal_it_needs(clusters: list[Cluster]) -> None:
    source, dsn = prepared_source(clusters)
    backup(source, "base")
    asyncio.run(populate(dsn, 1, 50))
    wait_archived(source)
    backup(source, "base")
    wait_archived(source)
    old, new = sorted(p for p in (source.root / "backups" / "base").iterdir() if not p.name.startswith("."))
    week_ago = time.time() - 8 * 86400
    os.utime(old, (week_ago, week_ago))
    segments_before = sorted(p.name for p in source.archive.iterdir() if len(p.name) == 24)

    backup(source, "prune", KEEP_DAYS="7")

    assert not old.exists() and new.exists()
    first_needed = (new / "start-wal").read_text().strip()
    kept = sorted(p.name for p in source.archive.iterdir() if len(p.name) == 24)
    assert kept and kept[0] == first_needed
    assert [s for s in segments_before if s < first_needed], "there was older WAL to remove"
    backup(source, "prune", KEEP_DAYS="0")  # the newest base backup always stays
    assert new.exists()


def test_restore_refuses_a_data_directory_in_use(clusters: list[Cluster]) -> None:
    source, _ = prepared_source(clusters)
    backup(source, "base")
    base = next((source.root / "backups" / "base").iterdir())
    proc = source.run("sh", RESTORE, "base", base, source.data, check=False)
    assert proc.returncode == 1 and "is not empty" in proc.stderr
