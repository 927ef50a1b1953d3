"""The scripted site history shared by tests/integration/test_site_history.py (plain
PostgreSQL) and tests/timescale/test_site_history_timescale.py (PGlite+TimescaleDB).

``site_counts_series`` (migration 004) computes the step function from the
events themselves and is the reference: ``site_history`` must return the same
rows from the rollup, on scripted data with gaps, ties, resends, late events
from a backlog, a UTC midnight (two daily partitions) and retention. Events are
written with INSERT (COPY crashes PGlite), one statement per batch as ingest does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from ingest.history import refresh_history

START = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # two hours before a UTC midnight
END = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)
SPACES = ("S1", "S2", "S3", "S4", "S5")
GATEWAYS = ("gw-a", "gw-b")
FIVE = timedelta(minutes=5)
US = timedelta(microseconds=1)

# (from, to, step, stale): steps on 5-minute boundaries read the rollup's rows
# (`scan`), steps of at least stale + 30 min probe it per step (`probe`), the
# others (1 min, 7 min, 90 s) read events after the rollup's state (`events`).
QUERIES: tuple[tuple[datetime, datetime, timedelta, timedelta], ...] = (
    (START + timedelta(minutes=3), END, timedelta(hours=1), timedelta(minutes=20)),  # probe
    (START - timedelta(hours=30), END + timedelta(days=1), timedelta(hours=2), timedelta(minutes=75)),
    (START - timedelta(hours=1), END + timedelta(hours=2), FIVE, timedelta(minutes=30)),
    (START + timedelta(minutes=17, seconds=13), END, FIVE, timedelta(minutes=10)),
    (START, END, timedelta(minutes=15), timedelta(hours=1)),
    (START + timedelta(hours=2, minutes=40), END, timedelta(hours=1), timedelta(hours=3)),
    (MIDNIGHT - timedelta(minutes=10), MIDNIGHT + timedelta(minutes=10), FIVE, FIVE),
    (START, END, timedelta(days=1), timedelta(days=1)),
    (START + timedelta(minutes=50), START + timedelta(hours=2), timedelta(minutes=1), timedelta(minutes=30)),
    (START, END, timedelta(minutes=7), timedelta(minutes=20)),
    (MIDNIGHT - timedelta(minutes=33), MIDNIGHT + timedelta(minutes=20), timedelta(seconds=90), FIVE),
)


@dataclass(frozen=True, slots=True)
class Ev:
    gateway: str
    seq: int
    at: datetime
    space: str
    state: str


@dataclass(frozen=True, slots=True)
class Registry:
    site_id: int
    gateways: dict[str, int]
    spaces: dict[str, int]


Row = tuple[object, ...]


# --- the script -----------------------------------------------------------------


def _next_time(rng: random.Random, t: datetime) -> datetime:
    """Gaps of every kind: same instant (a tie), a microsecond, up to past any staleness."""
    step = rng.choice([timedelta(0), US, timedelta(seconds=37), timedelta(minutes=1),
                       FIVE - US, FIVE, timedelta(minutes=7), timedelta(minutes=15),
                       timedelta(minutes=40), timedelta(minutes=75)])
    t += step
    if rng.random() < 0.25:  # snap onto a 5-minute boundary: the edge the rollup must get right
        t = START + FIVE * -(-(t - START) // FIVE)
    return t


def script(seed: int = 5) -> tuple[list[Ev], list[Ev]]:
    """(live, backlog): events in arrival order, and late ones that arrive after them.

    seq is unique across gateways (ties at an instant are broken by seq, as the
    reference does); a tenth of the live events are resent, identically.
    """
    rng = random.Random(seed)
    events: list[Ev] = []
    seq = 0
    for space in SPACES:
        t = START + timedelta(seconds=rng.randint(0, 900))
        while t < END:
            seq += 1
            events.append(Ev(rng.choice(GATEWAYS), seq, t, space,
                             rng.choice(["free", "occupied", "occupied", "unknown"])))
            t = _next_time(rng, t)
    events.sort(key=lambda e: (e.at, e.seq))
    late = {e.seq for e in rng.sample(events, len(events) // 4)}
    live = [e for e in events if e.seq not in late]
    resent = rng.sample(live, len(live) // 10)
    live = sorted(live + resent, key=lambda e: (e.at, e.seq))
    backlog = [e for e in events if e.seq in late]
    rng.shuffle(backlog)
    return live, backlog


def batches(events: Sequence[Ev], size: int) -> list[Sequence[Ev]]:
    return [events[i:i + size] for i in range(0, len(events), size)]


# --- SQL shared by both flavors ---------------------------------------------------


async def provision(con: asyncpg.Connection, tenant: str) -> Registry:
    """A tenant with one parking site, its spaces and two gateways bound to them."""
    tenant_id = await con.fetchval(
        "INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id", tenant)
    site_id = await con.fetchval(
        """INSERT INTO sites (tenant_id, slug, kind, name, lat, lon, stale_after_s)
           VALUES ($1, 'lot', 'parking', 'Lot', 29.61, 52.53, 600) RETURNING id""", tenant_id)
    gateways = {g: await con.fetchval(
        "INSERT INTO gateways (tenant_id, slug) VALUES ($1, $2) RETURNING id", tenant_id, g)
        for g in GATEWAYS}
    spaces = {s: await con.fetchval(
        "INSERT INTO spaces (site_id, slug) VALUES ($1, $2) RETURNING id", site_id, s)
        for s in SPACES}
    return Registry(site_id, gateways, spaces)


async def insert(con: asyncpg.Connection, reg: Registry, events: Sequence[Ev]) -> int:
    """One INSERT … ON CONFLICT DO NOTHING for the batch, as ingest writes; returns rows stored."""
    days = sorted({e.at.date() for e in events})
    await con.execute("SELECT ensure_event_partitions($1, $2)", days[0], days[-1])
    status = await con.execute(
        """INSERT INTO occupancy_events (observed_at, gateway_id, seq, space_id, state, source)
           SELECT t.at, t.gw, t.seq, t.space, t.state, 'sensor'
           FROM unnest($1::timestamptz[], $2::int[], $3::bigint[], $4::int[], $5::text[])
                AS t(at, gw, seq, space, state)
           ON CONFLICT DO NOTHING""",
        [e.at for e in events], [reg.gateways[e.gateway] for e in events],
        [e.seq for e in events], [reg.spaces[e.space] for e in events], [e.state for e in events])
    return int(status.split()[-1])


async def play(con: asyncpg.Connection, reg: Registry, live: Sequence[Ev], backlog: Sequence[Ev],
               *, refresh_every: int = 3) -> int:
    """Live batches with a refresh every few, then the backlog, then a last refresh."""
    stored = 0
    for i, batch in enumerate(batches(live, 17)):
        stored += await insert(con, reg, batch)
        if i % refresh_every == refresh_every - 1:
            await refresh_history(con, since=None)
    for batch in batches(backlog, 23):
        stored += await insert(con, reg, batch)
    await refresh_history(con, since=None)
    return stored


async def history(con: asyncpg.Connection, reg: Registry, fn: str,
                  q: tuple[datetime, datetime, timedelta, timedelta]) -> list[Row]:
    rows = await con.fetch(f"SELECT * FROM {fn}($1, $2, $3, $4, $5)", reg.site_id, *q)
    return [tuple(r.values()) for r in rows]


async def rollup(con: asyncpg.Connection, reg: Registry) -> list[Row]:
    """The rollup rows of a site, by space slug (ids differ between databases)."""
    slug = {v: k for k, v in reg.spaces.items()}
    rows = await con.fetch(
        """SELECT space_id, bucket, last_state, last_at FROM space_history_5m
           WHERE space_id = ANY($1::int[]) ORDER BY space_id, bucket""", list(slug))
    return sorted((slug[r["space_id"]], r["bucket"], r["last_state"], r["last_at"]) for r in rows)


# --- the expected rollup, computed here without SQL --------------------------------


def stored(events: Sequence[Ev]) -> list[Ev]:
    """What the table keeps: the first event written for each (gateway, seq, instant)."""
    kept: dict[tuple[str, int, datetime], Ev] = {}
    for e in events:
        kept.setdefault((e.gateway, e.seq, e.at), e)
    return list(kept.values())


def expected_rollup(events: Sequence[Ev]) -> list[Row]:
    """Per space and bucket (t - 5 min, t], labelled t - 5 min + 1 µs: the last event."""
    last: dict[tuple[str, datetime], Ev] = {}
    for e in stored(events):
        label = START + FIVE * ((e.at - US - START) // FIVE) + US
        held = last.get((e.space, label))
        if held is None or (e.at, e.seq) > (held.at, held.seq):
            last[e.space, label] = e
    return sorted((space, label, e.state, e.at) for (space, label), e in last.items())
