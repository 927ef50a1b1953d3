"""A tenant with weeks of synthetic history, written straight into the 5-minute rollup
(``space_history_5m_rows``, migration 007), for the forecast service's tests.

The city keeps Friday as its weekend day. Each parking site fills on working
days from 08:00 to 19:00 local time (Asia/Tehran) and stays nearly empty on
Fridays and on the listed holiday; the free count at an instant is set by the
profile alone (``free_at``), and space ``i`` of ``n`` is occupied when the
occupied share is above ``(i + 0.5) / n``, so a row is written only when a
space changes (and a heartbeat every 6 hours: the sites' staleness bound is a
day). The spaces' current state (``space_state``) is their last row, so the
API's live counts agree with the history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from dashboard_api.provision import provision
from ingest.site_counts import STEP, boundary
from occupancy.sitefile import parse_site_file

TENANT = "fc"
TZ = ZoneInfo("Asia/Tehran")
HOLIDAY = "2026-01-07"  # a Wednesday, listed in the site file
HEARTBEAT = timedelta(hours=6)
SITES = {"busy": (20, 29.600, 52.500), "quiet": (10, 29.601, 52.501), "new": (5, 29.602, 52.502)}
WITH_HISTORY = ("busy", "quiet")


def site_file(tenant: str = TENANT, timezone: str = "Asia/Tehran") -> dict[str, Any]:
    """Three parking sites of ``tenant``: two with history to come, one new."""
    return {
        "tenant": {"id": tenant, "name": tenant, "timezone": timezone,
                   "holidays": [HOLIDAY, {"date": "2026-03-21", "name": "Nowruz", "name_fa": "نوروز"}]},
        "sites": [{"id": name, "kind": "parking", "name": name, "lat": lat, "lon": lon,
                   "stale_after_s": 86400, "zones": [{"id": "z", "spaces": {"prefix": "s", "count": n}}]}
                  for name, (n, lat, lon) in SITES.items()],
        "gateways": [{"id": "gw-1", "sites": list(SITES)}],
    }


def occupied_share(t: datetime, busy: float) -> float:
    """The share of spaces occupied at ``t``: a working-day hump, nearly empty on Fridays (pure)."""
    local = t.astimezone(TZ)
    hour = local.hour + local.minute / 60
    rest = local.weekday() == 4 or local.date().isoformat() == HOLIDAY
    peak = 0.15 if rest else busy
    day = max(0.0, math.sin(math.pi * (hour - 8) / 11)) if 8 <= hour <= 19 else 0.0
    return 0.05 + (peak - 0.05) * day


def free_at(t: datetime, n: int, busy: float) -> int:
    """Free spaces of an ``n``-space site at ``t`` by the profile (pure)."""
    return sum(1 for i in range(n) if occupied_share(t, busy) <= (i + 0.5) / n)


@dataclass(frozen=True, slots=True)
class Seeded:
    tenant: str
    site_ids: dict[str, int]
    end: datetime  # the last history bucket ends here (a 5-minute boundary)


async def seed_history(con: asyncpg.Connection, *, days: int, now: datetime, tenant: str = TENANT,
                       timezone: str = "Asia/Tehran") -> Seeded:
    """Provision the tenant and write ``days`` of history of its sites with history, up to now."""
    await provision(con, parse_site_file(site_file(tenant, timezone)))
    rows = await con.fetch(
        """SELECT si.slug AS site, si.id AS site_id, sp.id AS space_id, sp.slug AS space
           FROM sites si JOIN spaces sp ON sp.site_id = si.id JOIN tenants t ON t.id = si.tenant_id
           WHERE t.slug = $1 ORDER BY sp.slug""", tenant)
    gateway = await con.fetchval(
        "SELECT g.id FROM gateways g JOIN tenants t ON t.id = g.tenant_id WHERE t.slug = $1", tenant)
    end = boundary(now) - STEP
    records: list[tuple[Any, ...]] = []
    for k, site in enumerate(WITH_HISTORY):
        spaces = [r["space_id"] for r in rows if r["site"] == site]
        records += _space_rows(spaces, end - timedelta(days=days), end, busy=0.9 - 0.3 * k)
    await con.copy_records_to_table("space_history_5m_rows", records=records,
                                    columns=["space_id", "bucket", "last_state", "last_at", "last_seq"])
    await con.execute("UPDATE space_history_horizon SET materialized_to = $1", end + STEP)
    await _current_states(con, records, gateway)
    return Seeded(tenant, {r["site"]: r["site_id"] for r in rows}, end)


def _space_rows(spaces: list[int], start: datetime, end: datetime, *, busy: float) -> list[tuple[Any, ...]]:
    """A rollup row (bucket labelled by its first microsecond) whenever a space changes, and
    a heartbeat every ``HEARTBEAT``."""
    out: list[tuple[Any, ...]] = []
    n = len(spaces)
    last: dict[int, tuple[str, datetime]] = {}
    t = start
    while t <= end:
        share = occupied_share(t, busy)
        for i, space in enumerate(spaces):
            state = "occupied" if share > (i + 0.5) / n else "free"
            held = last.get(space)
            if held is None or held[0] != state or t - held[1] >= HEARTBEAT:
                out.append((space, t - STEP + timedelta(microseconds=1), state, t, len(out) + 1))
                last[space] = (state, t)
        t += STEP
    return out


async def _current_states(con: asyncpg.Connection, records: list[tuple[Any, ...]], gateway: int) -> None:
    latest: dict[int, tuple[Any, ...]] = {}
    for r in records:
        latest[r[0]] = r
    await con.executemany(
        """INSERT INTO space_state (space_id, state, observed_at, source, gateway_id, seq, changed_at)
           VALUES ($1, $2, $3, 'sensor', $4, $5, $3)""",
        [(r[0], r[2], r[3], gateway, r[4]) for r in latest.values()])


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
