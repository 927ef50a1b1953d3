"""The TimescaleDB flavor of the schema, on PGlite+TimescaleDB, against plain PostgreSQL.

One PGlite server serves the whole module (see conftest.py); each test uses a
tenant of its own in it. PGlite serves one connection at a time, so every test
holds at most one connection to it. Events are written with INSERT: COPY
crashes PGlite's WASM instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from ingest.migrate import Flavor, bundled_migrations, migrate, schema_flavor

pytestmark = pytest.mark.node

STEP = timedelta(minutes=5)
STALE = timedelta(hours=1)
SPACES = ("A-001", "A-002", "A-003")


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    minute: float  # after the script's start
    space: str
    state: str


# A morning at a small lot: changes, two spaces changing at the same instant,
# a quiet hour (counts hold), staleness (a space silent for an hour is unknown)
# and a resent event (same gateway, seq and instant) that must be ignored.
SCRIPT = (
    Event(1, 1.5, "A-001", "free"),
    Event(2, 2, "A-002", "occupied"),
    Event(3, 7, "A-001", "occupied"),
    Event(4, 12.25, "A-003", "unknown"),
    Event(5, 13, "A-003", "occupied"),
    Event(2, 2, "A-002", "free"),  # a resend of seq 2: the stored one stays
    Event(6, 31, "A-001", "free"),
    Event(7, 40, "A-002", "free"),
    Event(8, 40, "A-003", "free"),
    Event(9, 75, "A-001", "occupied"),
)
START = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
END = START + timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Registry:
    site_id: int
    gateway_id: int
    spaces: dict[str, int]


def at(minute: float) -> datetime:
    return START + timedelta(minutes=minute)


# --- the expected answers, computed here without SQL --------------------------


def stored(script: Sequence[Event]) -> list[Event]:
    """What the table keeps: the first of events sharing (seq, instant)."""
    kept: dict[tuple[int, float], Event] = {}
    for e in script:
        kept.setdefault((e.seq, e.minute), e)
    return list(kept.values())


def expected_buckets(script: Sequence[Event]) -> list[tuple[datetime, str, int]]:
    counts: dict[tuple[datetime, str], int] = {}
    for e in stored(script):
        bucket = START + STEP * int(timedelta(minutes=e.minute) / STEP)
        counts[bucket, e.state] = counts.get((bucket, e.state), 0) + 1
    return sorted((b, s, n) for (b, s), n in counts.items())


def state_at(events: Sequence[Event], space: str, t: datetime) -> str:
    """Last observation carried forward, unknown once older than STALE."""
    seen = [e for e in events if e.space == space and at(e.minute) <= t]
    if not seen:
        return "unknown"
    last = max(seen, key=lambda e: (e.minute, e.seq))
    return last.state if at(last.minute) > t - STALE else "unknown"


def expected_series(script: Sequence[Event]) -> list[tuple[datetime, int, int, int, int]]:
    events = stored(script)
    rows = []
    t = START
    while t <= END:
        states = [state_at(events, s, t) for s in SPACES]
        rows.append((t, states.count("free"), states.count("occupied"),
                     states.count("unknown"), len(SPACES)))
        t += STEP
    return rows


# --- the same SQL on both flavors ---------------------------------------------


async def provision(con: asyncpg.Connection, tenant: str) -> Registry:
    """A tenant, a parking site with three spaces and a gateway bound to them."""
    tenant_id = await con.fetchval(
        "INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id", tenant)
    site_id = await con.fetchval(
        """INSERT INTO sites (tenant_id, slug, kind, name, lat, lon)
           VALUES ($1, 'lot', 'parking', 'Lot', 29.61, 52.53) RETURNING id""", tenant_id)
    gateway_id = await con.fetchval(
        "INSERT INTO gateways (tenant_id, slug) VALUES ($1, 'gw-lot') RETURNING id", tenant_id)
    spaces = {}
    for slug in SPACES:
        spaces[slug] = await con.fetchval(
            "INSERT INTO spaces (site_id, slug) VALUES ($1, $2) RETURNING id", site_id, slug)
        await con.execute("INSERT INTO gateway_spaces VALUES ($1, $2)", gateway_id, spaces[slug])
    return Registry(site_id, gateway_id, spaces)


async def insert_events(con: asyncpg.Connection, reg: Registry, script: Sequence[Event]) -> int:
    """INSERT … ON CONFLICT DO NOTHING, one by one; returns how many were stored."""
    days = sorted({at(e.minute).date() for e in script})
    await con.execute("SELECT ensure_event_partitions($1, $2)", days[0], days[-1])
    count = 0
    for e in script:
        status = await con.execute(
            """INSERT INTO occupancy_events (observed_at, gateway_id, seq, space_id, state, source)
               VALUES ($1, $2, $3, $4, $5, 'sensor') ON CONFLICT DO NOTHING""",
            at(e.minute), reg.gateway_id, e.seq, reg.spaces[e.space], e.state)
        count += int(status.split()[-1])
    return count


async def buckets(con: asyncpg.Connection, reg: Registry) -> list[tuple[datetime, str, int]]:
    rows = await con.fetch(
        """SELECT time_bucket('5 minutes', e.observed_at) AS bucket, e.state, count(*)::int AS n
           FROM occupancy_events e JOIN spaces s ON s.id = e.space_id
           WHERE s.site_id = $1 GROUP BY 1, 2 ORDER BY 1, 2""", reg.site_id)
    return [(r["bucket"], r["state"], r["n"]) for r in rows]


async def series(con: asyncpg.Connection, reg: Registry) -> list[tuple[datetime, int, int, int, int]]:
    rows = await con.fetch(
        "SELECT * FROM site_counts_series($1, $2, $3, interval '5 minutes', interval '1 hour')",
        reg.site_id, START, END)
    return [(r["bucket"], r["free"], r["occupied"], r["unknown"], r["total"]) for r in rows]


# --- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def timescale_applied(timescale_dsn: str) -> list[str]:
    """Migrates the module's PGlite once; the names the first migrate applied."""

    async def run() -> list[str]:
        con = await asyncpg.connect(timescale_dsn)
        try:
            return await migrate(con, flavor="timescale")
        finally:
            await con.close()

    return asyncio.run(run())


@pytest.fixture
async def ts(timescale_dsn: str, timescale_applied: list[str]) -> AsyncIterator[asyncpg.Connection]:
    """The one connection to the migrated PGlite+TimescaleDB, closed after the test."""
    con = await asyncpg.connect(timescale_dsn)
    try:
        yield con
    finally:
        await con.close()


# --- tests ---------------------------------------------------------------------


def test_every_timescale_migration_applies(timescale_applied: list[str]) -> None:
    wanted = [f"{m.version:03d}_{m.name}" for m in bundled_migrations()
              if m.flavor in (None, Flavor.TIMESCALE)]
    assert timescale_applied == wanted


async def test_events_are_a_compressed_hypertable(ts: asyncpg.Connection) -> None:
    table = await ts.fetchrow(
        """SELECT compression_enabled, primary_dimension FROM timescaledb_information.hypertables
           WHERE hypertable_name = 'occupancy_events'""")
    assert table is not None
    assert table["compression_enabled"] is True
    assert table["primary_dimension"] == "observed_at"
    jobs = await ts.fetch(
        """SELECT proc_name FROM timescaledb_information.jobs
           WHERE hypertable_name = 'occupancy_events'""")
    assert [j["proc_name"] for j in jobs] == ["policy_compression"]


async def test_second_migrate_does_nothing(ts: asyncpg.Connection) -> None:
    assert await migrate(ts, flavor="timescale") == []
    assert await migrate(ts) == []  # "auto" keeps the recorded flavor
    assert await schema_flavor(ts) == Flavor.TIMESCALE


async def test_queries_agree_with_plain_postgres(ts: asyncpg.Connection, db: asyncpg.Connection) -> None:
    results = {}
    for name, con in (("timescale", ts), ("plain", db)):
        reg = await provision(con, "agree")
        assert await insert_events(con, reg, SCRIPT) == len(SCRIPT) - 1  # the resend is ignored
        results[name] = (await buckets(con, reg), await series(con, reg))
    assert results["timescale"] == results["plain"]
    assert results["plain"] == (expected_buckets(SCRIPT), expected_series(SCRIPT))


def test_expected_series_is_a_step_function() -> None:
    """The reference itself: counts hold through quiet steps and go stale after an hour."""
    rows = {t: (free, occ, unk) for t, free, occ, unk, _ in expected_series(SCRIPT)}
    assert rows[at(0)] == (0, 0, 3)  # nothing seen yet
    assert rows[at(15)] == (0, 3, 0)  # A-002 still occupied: the resend did not free it
    assert rows[at(45)] == rows[at(50)] == rows[at(70)] == (3, 0, 0)  # quiet steps hold
    assert rows[at(75)] == rows[at(95)] == (2, 1, 0)
    assert rows[at(100)] == rows[at(120)] == (0, 1, 2)  # silent for an hour


async def test_compressed_chunks_answer_the_same(ts: asyncpg.Connection) -> None:
    reg = await provision(ts, "compressed")
    await insert_events(ts, reg, SCRIPT)
    before = (await buckets(ts, reg), await series(ts, reg))
    compressed = await ts.fetch(
        "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('occupancy_events') c")
    assert compressed
    assert await insert_events(ts, reg, SCRIPT) == 0  # resends into compressed chunks are ignored
    assert (await buckets(ts, reg), await series(ts, reg)) == before


async def _days_left(con: asyncpg.Connection, reg: Registry) -> list[date]:
    rows = await con.fetch(
        """SELECT DISTINCT (observed_at AT TIME ZONE 'UTC')::date AS day FROM occupancy_events
           WHERE gateway_id = $1 ORDER BY 1""", reg.gateway_id)
    return [r["day"] for r in rows]


async def _old_storage(con: asyncpg.Connection, flavor: str, cut: datetime) -> int:
    """How many chunks (TimescaleDB) or daily partitions (plain) end before cut."""
    if flavor == "timescale":
        return int(await con.fetchval(
            "SELECT count(*) FROM show_chunks('occupancy_events', older_than => $1::timestamptz)",
            cut))
    return int(await con.fetchval(
        """SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'occupancy_events'::regclass
             AND c.relname < 'occupancy_events_' || to_char($1::timestamptz AT TIME ZONE 'UTC',
                                                              'YYYYMMDD')""", cut))


async def test_drop_event_partitions_on_both(ts: asyncpg.Connection, db: asyncpg.Connection) -> None:
    """Five old days of events; dropping before the fourth leaves the last two."""
    days = [date(2024, 6, d) for d in range(1, 6)]
    cut = datetime(2024, 6, 4, 0, 0, tzinfo=UTC)
    for flavor, con in (("timescale", ts), ("plain", db)):
        reg = await provision(con, "retention")
        await con.execute("SELECT ensure_event_partitions($1, $2)", days[0], days[-1])
        for seq, day in enumerate(days, start=1):
            noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            await con.execute(
                """INSERT INTO occupancy_events (observed_at, gateway_id, seq, space_id, state, source)
                   VALUES ($1, $2, $3, $4, 'free', 'sensor')""",
                noon, reg.gateway_id, seq, reg.spaces["A-001"])
        assert await _old_storage(con, flavor, cut) == 3, flavor
        assert await con.fetchval("SELECT drop_event_partitions($1)", cut) == 3, flavor
        assert await _old_storage(con, flavor, cut) == 0, flavor
        assert await _days_left(con, reg) == days[3:], flavor
        assert await con.fetchval("SELECT drop_event_partitions($1)", cut) == 0, flavor
