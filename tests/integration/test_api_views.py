"""NGSI-LD views validated against the official Smart Data Models schemas; market manager
views (attendance, utilization, alerts, CSV); ETag, rate limit and min_free."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.api import TENANT, app_for, asgi_client, observe, seed_city, token

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")


def _validator(shared: Path, model: str) -> Any:
    specs = shared / "specs" / "fiware-parking"
    common = json.loads((specs / "common-schema.json").read_text())
    registry = referencing.Registry().with_resource(
        common["$id"], referencing.Resource.from_contents(common, referencing.jsonschema.DRAFT202012)
    )
    schema = json.loads((specs / model / "schema.json").read_text())
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.FormatChecker()
    )


async def test_ngsi_entities_validate(database: str, db: asyncpg.Connection, shared_dir: Path) -> None:
    await seed_city(database)
    await observe(db, "lot-a", "a1", "occupied", datetime.now(UTC) - timedelta(seconds=30), 1)
    validators = {m: _validator(shared_dir, m) for m in ("OffStreetParking", "ParkingSpot")}
    async with asgi_client(app_for(database)) as c:
        for model, count in (("OffStreetParking", 3), ("ParkingSpot", 8)):
            r = await c.get("/ngsi-ld/v1/entities", params={"type": model, "options": "keyValues"})
            assert r.status_code == 200 and "json-ld#context" in r.headers["link"]
            entities = r.json()
            assert len(entities) == count
            for e in entities:
                errors = list(validators[model].iter_errors(e))
                assert not errors, (e["id"], [x.message for x in errors])
        lot = (await c.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:{TENANT}:lot-a")).json()
        assert lot["totalSpotNumber"] == 4 and lot["occupiedSpotNumber"] == 1
        assert lot["availableSpotNumber"] == 0 and lot["occupancy"] == 0.25
        assert lot["location"] == {"type": "Point", "coordinates": [52.5, 29.6]}
        assert lot["openingHours"] == "Mo-Su 06:00-23:00"
        spot = (await c.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:ParkingSpot:{TENANT}:lot-a:a1")).json()
        assert spot["status"] == "occupied" and spot["refParkingSite"] == lot["id"]
        assert spot["refDevice"] == [f"urn:ngsi-ld:Device:{TENANT}:lot-a:s-a1"]
        market = (await c.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:{TENANT}:market")).json()
        assert market["extCategory"] == ["marketStalls"]
        assert market["openingHours"] == "Mo,Tu,We,Th,Sa,Su 07:00-21:00"
        assert (await c.get("/ngsi-ld/v1/entities/urn:ngsi-ld:ParkingSpot:x:y:z")).status_code == 404
        assert (await c.get("/ngsi-ld/v1/entities/nonsense")).status_code == 400
        assert (await c.get("/ngsi-ld/v1/entities")).status_code == 400


# Thursday 2026-01-15 in Tehran (UTC+03:30): the market opens 07:00 = 03:30Z, closes 21:00 = 17:30Z.
OPEN = datetime(2026, 1, 15, 3, 30, tzinfo=UTC)


async def test_attendance_utilization_alerts_csv(database: str, db: asyncpg.Connection) -> None:
    await seed_city(database)
    seq = 0

    # stall-001 (heartbeats every 20 min): there from 06:00 local, leaves 10:00, back 11:00, leaves 12:00
    def beats(start: datetime, hours: int) -> list[tuple[str, datetime]]:
        return [("occupied", start + timedelta(minutes=m)) for m in range(0, hours * 60, 20)]

    story = [
        *beats(OPEN - timedelta(hours=1), 4),
        ("free", OPEN + timedelta(hours=3)),
        *beats(OPEN + timedelta(hours=4), 1),
        ("free", OPEN + timedelta(hours=5)),
    ]
    for state, at in story:
        seq += 1
        await observe(db, "market", "stall-001", state, at, seq, notify=False)
    # stall-002 arrives 08:30 local, heartbeats every 20 min until 09:30, then silent (stale after 30 min)
    for minutes in (90, 110, 130, 150):
        seq += 1
        await observe(
            db, "market", "stall-002", "occupied", OPEN + timedelta(minutes=minutes), seq, notify=False
        )
    admin = await token(database, TENANT, "admin")
    auth = {"Authorization": f"Bearer {admin}"}
    async with asgi_client(app_for(database)) as c:
        r = await c.get(
            f"/v1/manage/{TENANT}/sites/market/attendance", params={"date": "2026-01-15"}, headers=auth
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["date_jalali"] == "1404-10-25" and not body["closed"]
        stalls = {s["space"]: s for s in body["stalls"]}
        s1, s2, s3 = stalls["stall-001"], stalls["stall-002"], stalls["stall-003"]
        assert s1["first_arrival"].startswith("2026-01-15T03:30:00") and s1["vendor"] == "Karimi"
        assert s1["last_departure"].startswith("2026-01-15T08:30:00")
        assert s1["minutes_occupied"] == pytest.approx(240)
        assert s2["minutes_occupied"] == pytest.approx(60 + 30) and not s2["absent"]
        assert s3["absent"] and s3["minutes_occupied"] == 0
        r = await c.get(
            f"/v1/manage/{TENANT}/sites/market/attendance", params={"date": "2026-01-16"}, headers=auth
        )
        assert r.json()["closed"] is True  # Friday
        r = await c.get(
            f"/v1/manage/{TENANT}/sites/market/attendance",
            params={"date": "2026-01-15", "format": "csv"},
            headers=auth,
        )
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert (
            rows[0]["first_arrival_local"] == "2026-01-15 07:00:00" and rows[0]["date_jalali"] == "1404-10-25"
        )

        r = await c.get(
            f"/v1/manage/{TENANT}/sites/market/utilization",
            params={"from": "2026-01-15", "to": "2026-01-15"},
            headers=auth,
        )
        hours = {h["hour"]: h for h in r.json()["hours"]}
        assert hours[7]["occupied_minutes"] == pytest.approx(60)  # stall-001 only
        assert hours[8]["occupied_minutes"] == pytest.approx(60 + 30)
        assert hours[7]["utilization"] == pytest.approx(60 / 180, abs=1e-3)
        assert hours[6]["occupied_minutes"] == pytest.approx(60)  # before opening counts too
        r = await c.get(
            f"/v1/manage/{TENANT}/sites/market/utilization",
            params={"from": "2026-01-15", "to": "2026-01-15", "format": "csv"},
            headers=auth,
        )
        assert r.text.startswith("hour,utilization")

        r = await c.get(f"/v1/manage/{TENANT}/alerts", headers=auth)
        kinds = {(a["kind"], a["subject"]) for a in r.json()}
        assert ("gateway_offline", "gw-1") in kinds and ("device_silent", "s-a1") in kinds
        await db.execute(
            "INSERT INTO device_health (device_id, reported_at, battery_pct) "
            "SELECT id, now(), 9 FROM devices WHERE slug = 's-a1'"
        )
        r = await c.get(f"/v1/manage/{TENANT}/alerts", params={"format": "csv"}, headers=auth)
        assert "battery_low,lot-a,s-a1" in r.text
        r = await c.get(f"/v1/manage/{TENANT}/sites/market/day", params={"date": "2026-01-15"}, headers=auth)
        assert len(r.json()["points"]) == 96


async def test_etag_rate_limit_and_min_free(database: str, db: asyncpg.Connection) -> None:
    await seed_city(database)
    await observe(db, "lot-a", "a1", "free", datetime.now(UTC) - timedelta(seconds=30), 1)
    async with asgi_client(app_for(database, rate_limit_per_s=1, rate_limit_burst=5)) as c:
        r = await c.get(f"/v1/sites/{TENANT}/lot-a")
        etag = r.headers["etag"]
        assert r.headers["cache-control"] == "public, max-age=2"
        r = await c.get(f"/v1/sites/{TENANT}/lot-a", headers={"If-None-Match": etag})
        assert r.status_code == 304 and not r.content
        r = await c.get("/v1/sites", params={"min_free": 1})
        assert [s["site"] for s in r.json()] == ["lot-a"]
        statuses = [(await c.get("/v1/sites")).status_code for _ in range(4)]
        assert statuses[:2] == [200, 200] and statuses[2] == 429  # a burst of 5, refilling at 1/s
        r = await c.get("/v1/sites")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert (await c.get("/healthz")).status_code == 200  # not a public data path: not limited
