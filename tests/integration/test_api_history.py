"""History as a step function: across daily partitions, over gaps, against a brute-force model."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import asyncpg

from tests.support.api import TENANT, app_for, asgi_client, observe, seed_city

T0 = datetime(2026, 1, 10, 22, 0, tzinfo=UTC)
STALE = timedelta(seconds=600)  # lot-a's stale_after_s
SPACES = ["a1", "a2", "a3", "a4"]


def _model(events: list[tuple[str, str, datetime]], at: datetime) -> tuple[int, int]:
    """(free, occupied) at ``at``: each space's last event at or before it, if fresh."""
    free = occupied = 0
    for space in SPACES:
        past = [e for e in events if e[0] == space and e[2] <= at]
        if past:
            _, state, when = max(past, key=lambda e: e[2])
            if when > at - STALE:
                free += state == "free"
                occupied += state == "occupied"
    return free, occupied


async def test_history_matches_the_step_function_across_partitions(
    database: str, db: asyncpg.Connection
) -> None:
    await seed_city(database)
    rng = random.Random(7)
    events: list[tuple[str, str, datetime]] = []
    seq = 0
    for space in SPACES:
        t = T0 + timedelta(seconds=rng.randint(0, 600))
        while t < T0 + timedelta(hours=28):  # over two UTC midnights
            seq += 1
            events.append((space, rng.choice(["free", "occupied", "occupied"]), t))
            t += timedelta(seconds=rng.choice([60, 240, 500, 900, 3600]))  # gaps past the stale bound too
    for space, state, t in events:
        await observe(db, "lot-a", space, state, t, seq := seq + 1, notify=False)
    parts = await db.fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'occupancy_events'::regclass"
        " AND inhrelid::regclass::text LIKE 'occupancy_events_202601%'"
    )
    assert parts >= 3

    async with asgi_client(app_for(database)) as c:
        r = await c.get(
            f"/v1/sites/{TENANT}/lot-a/history",
            params={"from": "2026-01-10T21:47:00Z", "to": "2026-01-12T03:00:00Z", "step": "5m"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["step_s"] == 300 and body["timezone"] == "Asia/Tehran"
        points = body["points"]
        assert points[0]["at"].startswith("2026-01-10T21:45:00")  # aligned down to the step
        assert len(points) == (29 * 60 + 15) // 5 + 1
        for p in points:
            at = datetime.fromisoformat(p["at"])
            assert (p["free"], p["occupied"]) == _model(events, at), p["at"]
            assert p["free"] + p["occupied"] + p["unknown"] == p["total"] == 4

        # a range wholly inside a gap with no events carries the last state forward until it goes stale
        last = max((e for e in events if e[0] == "a1"), key=lambda e: e[2])
        r = await c.get(
            f"/v1/sites/{TENANT}/lot-a/history",
            params={"from": "2026-01-13T00:00:00Z", "to": "2026-01-13T01:00:00Z", "step": "30m"},
        )
        assert [p["unknown"] for p in r.json()["points"]] == [4, 4, 4]
        assert last[2] < datetime(2026, 1, 13, tzinfo=UTC) - STALE


async def test_history_errors(database: str) -> None:
    await seed_city(database)
    async with asgi_client(app_for(database)) as c:
        assert (await c.get(f"/v1/sites/{TENANT}/nope/history")).status_code == 404
        for params in (
            {"step": "0m"},
            {"step": "5x"},
            {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "step": "1m"},
            {"from": "2026-01-01T00:00:00"},
        ):
            r = await c.get(f"/v1/sites/{TENANT}/lot-a/history", params=params)
            assert r.status_code == 422, (params, r.text)
        r = await c.get(f"/v1/sites/{TENANT}/lot-a/history")
        assert r.status_code == 200 and len(r.json()["points"]) == 24 * 12 + 2  # and one at `to`: now


async def test_right_after_the_first_observation_the_last_point_is_not_unknown(
    database: str, db: asyncpg.Connection
) -> None:
    """Issue 16, item 6: the series ends with a point at `to` (off the grid), so a site whose
    first events came after the last 5-minute step still shows its counts."""
    await seed_city(database)
    for i, space in enumerate(SPACES):
        await observe(db, "lot-a", space, "occupied" if i else "free", T0 + timedelta(minutes=2), i + 1,
                      notify=False)
    async with asgi_client(app_for(database)) as c:
        r = await c.get(f"/v1/sites/{TENANT}/lot-a/history",
                        params={"from": (T0 - timedelta(hours=1)).isoformat(),
                                "to": (T0 + timedelta(minutes=3)).isoformat(), "step": "5m"})
        points = r.json()["points"]
        assert [p["unknown"] for p in points[:-1]] == [4] * 13  # 21:00 … 22:00, before any event
        assert points[-1]["at"].startswith("2026-01-10T22:03:00")
        assert (points[-1]["free"], points[-1]["occupied"], points[-1]["unknown"]) == (1, 3, 0)
        on_grid = await c.get(f"/v1/sites/{TENANT}/lot-a/history",
                              params={"from": T0.isoformat(), "to": (T0 + timedelta(minutes=5)).isoformat(),
                                      "step": "5m"})
        assert [p["at"][11:16] for p in on_grid.json()["points"]] == ["22:00", "22:05"]  # no repeat
