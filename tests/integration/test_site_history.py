"""The history rollup (migration 007) on plain PostgreSQL: site_history() against the event series.

``site_counts_series`` (migration 004) computes the step function from the
events themselves and is the reference: ``site_history`` must return the same
rows from the rollup, on scripted data with gaps, ties, resends, late events
from a backlog, a UTC midnight (two daily partitions) and retention. The
script and its helpers live in tests/support/history.py (the TimescaleDB flavor
plays the same script).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from dashboard_api.queries import history as api_history
from ingest.history import refresh_history
from tests.support.history import (
    END,
    FIVE,
    MIDNIGHT,
    QUERIES,
    SPACES,
    START,
    US,
    Ev,
    batches,
    expected_rollup,
    history,
    insert,
    play,
    provision,
    rollup,
    script,
    stored,
)


def test_expected_rollup_labels_buckets_by_their_end() -> None:
    """The reference itself: an event on a boundary closes the bucket before it."""
    on = Ev("gw-a", 1, START + FIVE, "S1", "free")
    after = Ev("gw-a", 2, START + FIVE + US, "S1", "occupied")
    assert expected_rollup([on, after]) == [
        ("S1", START + US, "free", START + FIVE),
        ("S1", START + FIVE + US, "occupied", START + FIVE + US),
    ]


# --- tests ------------------------------------------------------------------------


async def test_history_equals_the_event_series(db: asyncpg.Connection) -> None:
    live, backlog = script()
    reg = await provision(db, "plain-eq")
    assert await play(db, reg, live, backlog) == len(stored(live + backlog))
    assert await rollup(db, reg) == expected_rollup(live + backlog)
    assert await db.fetchval("SELECT count(*) FROM space_history_pending") == 0
    for q in QUERIES:
        got = await history(db, reg, "site_history", q)
        assert got == await history(db, reg, "site_counts_series", q), q
        assert got and all(r[1] + r[2] + r[3] == r[4] == len(SPACES) for r in got)
    # the rollup is not trivially empty: every state shows up somewhere
    rows = await history(db, reg, "site_history", QUERIES[0])
    assert max(r[1] for r in rows) > 0 and max(r[2] for r in rows) > 0 and max(r[3] for r in rows) > 0


async def test_refresh_is_idempotent_and_order_independent(db: asyncpg.Connection) -> None:
    live, backlog = script(seed=11)
    everything = live + backlog
    in_order = await provision(db, "in-order")
    for batch in batches(sorted(everything, key=lambda e: (e.at, e.seq)), 50):
        await insert(db, in_order, batch)
    assert await refresh_history(db, since=None) == len(expected_rollup(everything))
    assert await refresh_history(db, since=None) == 0  # nothing pending: nothing written

    shuffled = await provision(db, "shuffled")
    mixed = list(reversed(everything))
    random.Random(3).shuffle(mixed)
    for i, batch in enumerate(batches(mixed, 31)):
        await insert(db, shuffled, batch)
        if i % 2:
            await refresh_history(db, since=None)
    await refresh_history(db, since=None)
    assert await rollup(db, shuffled) == await rollup(db, in_order) == expected_rollup(everything)


async def test_events_above_the_horizon_are_read_live(db: asyncpg.Connection) -> None:
    """Recent events count before any refresh; a late one counts after the next refresh."""
    reg = await provision(db, "live")
    now = datetime.now(UTC)
    await refresh_history(db, since=None)  # the horizon is now about 5 minutes ago
    recent = Ev("gw-a", 1, now - timedelta(minutes=1), "S1", "occupied")
    late = Ev("gw-a", 2, now - timedelta(hours=2), "S2", "free")
    await insert(db, reg, [recent, late])
    q = (now - timedelta(hours=3), now + FIVE, FIVE, timedelta(hours=6))  # the last step follows `recent`
    before = await history(db, reg, "site_history", q)
    assert before[-1][1:3] == (0, 1)  # the recent event, from the events themselves
    await refresh_history(db, since=None)
    after = await history(db, reg, "site_history", q)
    assert after[-1][1:3] == (1, 1)  # the late one, materialized
    assert after == await history(db, reg, "site_counts_series", q)


async def test_retention_keeps_newer_buckets(db: asyncpg.Connection) -> None:
    """Dropping the first day's partition changes no bucket after it, nor the state carried in."""
    live, backlog = script(seed=23)
    reg = await provision(db, "retention")
    await play(db, reg, live, backlog)
    q = (MIDNIGHT, END, FIVE, timedelta(hours=4))  # the first steps carry states from before midnight
    before_rows, before = await rollup(db, reg), await history(db, reg, "site_history", q)
    assert before == await history(db, reg, "site_counts_series", q)
    assert await db.fetchval("SELECT drop_event_partitions($1)", MIDNIGHT) >= 1
    assert await db.fetchval("SELECT count(*) FROM occupancy_events WHERE observed_at < $1", MIDNIGHT) == 0
    await insert(db, reg, [Ev("gw-a", 10_000, END, "S1", "free")])
    await refresh_history(db, since=MIDNIGHT)
    after_rows = await rollup(db, reg)
    assert [r for r in after_rows if r[3] != END] == before_rows  # old rows kept, none changed
    assert (await history(db, reg, "site_history", q))[:-1] == before[:-1]


async def test_ingest_style_copy_batches_are_logged(db: asyncpg.Connection) -> None:
    """COPY into a stage, then INSERT … SELECT (ingest's statements): the trigger logs the buckets."""
    reg = await provision(db, "copy")
    live, _ = script(seed=31)
    await db.execute("SELECT ensure_event_partitions($1, $2)", START.date(), END.date())
    async with db.transaction():
        await db.execute("CREATE TEMP TABLE stage (LIKE occupancy_events INCLUDING DEFAULTS) ON COMMIT DROP")
        await db.copy_records_to_table(
            "stage", columns=("observed_at", "gateway_id", "seq", "space_id", "state", "source"),
            records=[(e.at, reg.gateways[e.gateway], e.seq, reg.spaces[e.space], e.state, "sensor")
                     for e in live])
        await db.execute("INSERT INTO occupancy_events SELECT * FROM stage ON CONFLICT DO NOTHING")
    pending = await db.fetchval("SELECT count(*) FROM space_history_pending")
    assert pending == len({r[1] for r in expected_rollup(live)})  # one row per bucket: cheap for ingest
    await refresh_history(db, since=None)
    assert await rollup(db, reg) == expected_rollup(live)


async def test_matches_the_api_history_query(db: asyncpg.Connection) -> None:
    """site_history with the site's staleness answers what /history answers, retired spaces too."""
    live, backlog = script(seed=41)
    reg = await provision(db, "api")
    await play(db, reg, live, backlog)
    await db.execute("UPDATE spaces SET retired_at = $1 WHERE id = $2",
                     MIDNIGHT + timedelta(minutes=12), reg.spaces["S3"])
    for start, end, step in ((START, END, FIVE), (START + timedelta(minutes=3), END, timedelta(minutes=30)),
                             (MIDNIGHT - timedelta(hours=1), MIDNIGHT + timedelta(hours=1),
                              timedelta(minutes=1))):
        points = await api_history(db, tenant="api", site="lot", start=start, end=end, step=step)
        assert points is not None
        ours = await history(db, reg, "site_history", (start, end, step, timedelta(seconds=600)))
        assert ours == [(p.at, p.free, p.occupied, p.unknown, p.total) for p in points]
        assert {r[4] for r in ours if r[0] > MIDNIGHT + timedelta(minutes=12)} == {len(SPACES) - 1}


async def test_month_steps_are_refused(db: asyncpg.Connection) -> None:
    reg = await provision(db, "months")
    with pytest.raises(asyncpg.PostgresError, match="month"):
        await db.fetch("SELECT * FROM site_history($1, $2, $3, interval '1 month', interval '1 hour')",
                       reg.site_id, START, END)
