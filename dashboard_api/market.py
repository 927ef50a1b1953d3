"""What market managers read: vendor attendance, utilization by hour, alerts, CSV.

How this works: a stall's day is the step function of its events (the last
event before opening carried in, each event holding until the next one, the
observation going stale, closing time or now). Attendance integrates its
occupied intervals within the opening hours; utilization splits them by local
hour of day. The opening window of a local date is computed here (pure,
``opening_window``) from the site's ``opening_hours`` and the tenant's zone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from dashboard_api.jalali import jalali_iso
from dashboard_api.queries import _json
from dashboard_api.schemas import Alert, HourUse, StallDay

ABSENT_GRACE = timedelta(minutes=30)
BATTERY_LOW_PCT = 20.0
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_SITE_SQL = """SELECT si.id, si.kind, si.opening_hours, si.stale_after_s, t.timezone
FROM sites si JOIN tenants t ON t.id = si.tenant_id
WHERE t.slug = $1 AND si.slug = $2 AND si.retired_at IS NULL"""


def opening_window(day: date, hours: dict[str, Any] | None, tz: str) -> tuple[datetime, datetime] | None:
    """(open, close) instants of a local date, or None when closed that weekday (pure).

    No opening hours means the whole local day; ``close`` of ``24:00`` (or before
    ``open``) is on the next day.
    """
    zone = ZoneInfo(tz)
    if not hours:
        start = datetime.combine(day, time(0), zone)
        return start, datetime.combine(day + timedelta(days=1), time(0), zone)
    if _WEEKDAYS[day.weekday()] in {d.lower() for d in hours.get("closed_days", [])}:
        return None
    open_at = _at(day, hours["open"], zone)
    close_at = _at(day, hours["close"], zone)
    if close_at <= open_at:
        close_at = _at(day + timedelta(days=1), hours["close"], zone)
    return open_at, close_at


def _at(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day + timedelta(days=h // 24), time(h % 24, m), zone)


async def site_info(con: asyncpg.Connection, tenant: str, site: str) -> dict[str, Any] | None:
    row = await con.fetchrow(_SITE_SQL, tenant, site)
    return dict(row) | {"opening_hours": _json(row["opening_hours"])} if row else None


# Occupied intervals of every stall of a site within [$2, $3), capped at $5 (now).
_INTERVALS = """
sp AS (SELECT sp.id, sp.slug, z.slug AS zone, sp.attributes FROM spaces sp
       LEFT JOIN zones z ON z.id = sp.zone_id WHERE sp.site_id = $1 AND sp.retired_at IS NULL),
ev AS (
    SELECT e.* FROM sp CROSS JOIN LATERAL (
        SELECT ev.space_id, ev.state, ev.observed_at, ev.seq FROM occupancy_events ev
        WHERE ev.space_id = sp.id AND ev.observed_at <= $2
        ORDER BY ev.observed_at DESC, ev.seq DESC LIMIT 1) e
    UNION ALL
    SELECT space_id, state, observed_at, seq FROM occupancy_events
    WHERE space_id IN (SELECT id FROM sp) AND observed_at > $2 AND observed_at < $3
),
iv AS (
    SELECT space_id, state, observed_at, lag(state) OVER w AS prev,
           greatest(observed_at, $2) AS a,
           least(lead(observed_at, 1, 'infinity') OVER w, observed_at + make_interval(secs => $4),
                 $3, $5::timestamptz) AS b
    FROM ev WINDOW w AS (PARTITION BY space_id ORDER BY observed_at, seq)
)"""

_ATTENDANCE_SQL = f"""
WITH {_INTERVALS}
SELECT sp.slug AS space, sp.zone, sp.attributes->>'vendor' AS vendor, sp.attributes->>'category' AS category,
       min(iv.a) FILTER (WHERE iv.state = 'occupied' AND iv.b > iv.a) AS first_arrival,
       max(iv.observed_at) FILTER (WHERE iv.state <> 'occupied' AND iv.prev = 'occupied'
                                   AND iv.observed_at > $2) AS last_departure,
       coalesce(sum(extract(epoch FROM iv.b - iv.a)) FILTER (WHERE iv.state = 'occupied' AND iv.b > iv.a),
                0)::float8 / 60 AS minutes_occupied
FROM sp LEFT JOIN iv ON iv.space_id = sp.id
GROUP BY sp.slug, sp.zone, sp.attributes ORDER BY sp.zone NULLS LAST, sp.slug
"""

# $6: the tenant's time zone. Wall-clock hours of day, occupied minutes in each.
_UTILIZATION_SQL = f"""
WITH {_INTERVALS},
occ AS (SELECT (a AT TIME ZONE $6) AS a, (b AT TIME ZONE $6) AS b FROM iv
        WHERE state = 'occupied' AND b > a),
parts AS (
    SELECT h, extract(epoch FROM least(occ.b, h + interval '1 hour') - greatest(occ.a, h)) / 60 AS minutes
    FROM occ CROSS JOIN LATERAL generate_series(date_trunc('hour', occ.a), occ.b, interval '1 hour') AS h
    WHERE h < occ.b
)
SELECT extract(hour FROM h)::int AS hour, sum(minutes)::float8 AS minutes,
       (SELECT count(*) FROM sp)::int AS stalls
FROM parts GROUP BY 1 ORDER BY 1
"""


async def attendance(
    con: asyncpg.Connection, *, site_id: int, window: tuple[datetime, datetime], stale_after_s: int,
    now: datetime,
) -> list[StallDay]:
    """Per stall: first arrival, last departure, minutes occupied within ``window``."""
    rows = await con.fetch(_ATTENDANCE_SQL, site_id, window[0], window[1], stale_after_s, now)
    return [StallDay(**dict(r), absent=r["minutes_occupied"] == 0) for r in rows]


async def utilization(
    con: asyncpg.Connection, *, site_id: int, start: datetime, end: datetime, stale_after_s: int,
    now: datetime, tz: str, days: int,
) -> list[HourUse]:
    """Occupied share of stall-time per local hour of day over ``days`` days."""
    rows = await con.fetch(_UTILIZATION_SQL, site_id, start, end, stale_after_s, now, tz)
    stalls = await con.fetchval(
        "SELECT count(*) FROM spaces WHERE site_id = $1 AND retired_at IS NULL", site_id)
    by_hour = {r["hour"]: r["minutes"] for r in rows}
    capacity = float(stalls * days * 60)
    return [HourUse(hour=h, occupied_minutes=round(by_hour.get(h, 0.0), 2), stall_minutes=capacity,
                    utilization=round(min(1.0, by_hour.get(h, 0.0) / capacity), 4) if capacity else 0.0)
            for h in range(24)]


_ALERTS_SQL = """
WITH site AS (
    SELECT si.*, t.timezone FROM sites si JOIN tenants t ON t.id = si.tenant_id
    WHERE t.slug = $1 AND si.retired_at IS NULL AND (cardinality($2::text[]) = 0 OR si.slug = ANY($2))
),
dev AS (
    SELECT d.id, d.slug, s.slug AS site, s.stale_after_s,
           (SELECT max(st.observed_at) FROM device_spaces ds JOIN space_state st ON st.space_id = ds.space_id
            WHERE ds.device_id = d.id) AS last_seen
    FROM devices d JOIN site s ON s.id = d.site_id WHERE d.retired_at IS NULL
)
SELECT 'device_silent' AS kind, site, slug AS subject, last_seen AS since,
       'no observation for more than ' || stale_after_s || ' s' AS detail
FROM dev WHERE last_seen IS NULL OR last_seen <= $3::timestamptz - make_interval(secs => stale_after_s)
UNION ALL
SELECT 'gateway_offline', NULL, g.slug, g.status_at,
       CASE WHEN g.status_at IS NULL THEN 'never connected' ELSE 'last will received' END
FROM gateways g JOIN tenants t ON t.id = g.tenant_id
WHERE t.slug = $1 AND g.retired_at IS NULL AND NOT g.online
  AND (cardinality($2::text[]) = 0 OR EXISTS (
      SELECT FROM gateway_spaces gs JOIN spaces sp ON sp.id = gs.space_id JOIN site s ON s.id = sp.site_id
      WHERE gs.gateway_id = g.id))
UNION ALL
SELECT 'battery_low', dev.site, dev.slug, h.reported_at, 'battery at ' || round(h.battery_pct) || ' %'
FROM dev JOIN device_health h ON h.device_id = dev.id WHERE h.battery_pct < $4
ORDER BY 1, 2, 3
"""


async def alerts(
    con: asyncpg.Connection, *, tenant: str, sites: Sequence[str], now: datetime,
) -> list[Alert]:
    """Silent devices, offline gateways, low batteries, and absent stalls of open markets."""
    rows = await con.fetch(_ALERTS_SQL, tenant, list(sites), now, BATTERY_LOW_PCT)
    found = [Alert(**dict(r)) for r in rows]
    return found + await _absent_stalls(con, tenant=tenant, sites=sites, now=now)


async def _absent_stalls(
    con: asyncpg.Connection, *, tenant: str, sites: Sequence[str], now: datetime,
) -> list[Alert]:
    markets = await con.fetch(
        """SELECT si.slug FROM sites si JOIN tenants t ON t.id = si.tenant_id
           WHERE t.slug = $1 AND si.kind = 'market' AND si.retired_at IS NULL
             AND (cardinality($2::text[]) = 0 OR si.slug = ANY($2)) ORDER BY 1""", tenant, list(sites))
    out: list[Alert] = []
    for m in markets:
        info = await site_info(con, tenant, m["slug"])
        assert info is not None
        local = now.astimezone(ZoneInfo(info["timezone"])).date()
        window = opening_window(local, info["opening_hours"], info["timezone"])
        if window is None or not (window[0] + ABSENT_GRACE <= now < window[1]):
            continue
        stalls = await attendance(con, site_id=info["id"], window=window,
                                  stale_after_s=info["stale_after_s"], now=now)
        out += [Alert(kind="stall_absent", site=m["slug"], subject=s.space, since=window[0],
                      detail=f"not occupied since opening ({s.vendor or 'no vendor assigned'})")
                for s in stalls if s.absent]
    return out


def local_text(value: datetime | None, tz: str) -> str:
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text with a header line (pure)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def attendance_csv(day: date, stalls: Sequence[StallDay], tz: str) -> str:
    header = ("date", "date_jalali", "stall", "zone", "vendor", "category", "first_arrival_local",
              "last_departure_local", "minutes_occupied", "absent")
    return to_csv(header, ((day.isoformat(), jalali_iso(day), s.space, s.zone or "", s.vendor or "",
                            s.category or "", local_text(s.first_arrival, tz),
                            local_text(s.last_departure, tz), f"{s.minutes_occupied:.1f}",
                            "yes" if s.absent else "no") for s in stalls))


def utilization_csv(hours: Sequence[HourUse]) -> str:
    return to_csv(("hour", "utilization", "occupied_minutes", "stall_minutes"),
                  ((h.hour, h.utilization, h.occupied_minutes, h.stall_minutes) for h in hours))


def alerts_csv(items: Sequence[Alert], tz: str) -> str:
    return to_csv(("kind", "site", "subject", "since_local", "detail"),
                  ((a.kind, a.site or "", a.subject, local_text(a.since, tz), a.detail) for a in items))
