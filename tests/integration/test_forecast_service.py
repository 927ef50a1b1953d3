"""Free-space forecasts through the real database and API: ingest's maintenance counts
and fits the sites with history (tests/support/forecast.py writes three weeks of it
straight into the rollup), the forecast route answers from the stored models, a new
site falls back to persistence, `near` + `arrive_in` ranks by the forecast, and the
answers are cached like the other hot reads."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from prometheus_client import REGISTRY

from dashboard_api.provision import provision
from ingest.forecasting import run_forecasts
from ingest.site_counts import STEP
from occupancy.sitefile import parse_site_file
from stack.embedded import Mosquitto
from tests.support.api import app_for, asgi_client
from tests.support.forecast import HOLIDAY, TENANT, seed_history, site_file
from tests.support.ingest import running_ingest, settings_for
from tests.support.waiting import wait_until

DAYS = 21


def refits(outcome: str) -> float:
    return REGISTRY.get_sample_value("parkbazaar_ingest_forecast_refits_total", {"outcome": outcome}) or 0.0


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("parkbazaar_api_cache_lookups_total", {"result": result}) or 0.0


async def test_maintenance_fits_the_sites_with_history_and_contains_bad_data(db: asyncpg.Connection) -> None:
    now = datetime.now(UTC)
    seeded = await seed_history(db, days=DAYS, now=now)
    await seed_history(db, days=3, now=now, tenant="mars", timezone="Mars/Olympus_Mons")  # no such zone
    ok, failed = refits("ok"), refits("failed")

    report = await run_forecasts(db, now=now, history_days=DAYS, refit_s=86400, budget_s=60)

    assert report.ran and report.refitted == 2 and report.failed == 2 and report.due_left == 0
    assert (refits("ok"), refits("failed")) == (ok + 2, failed + 2)
    stored = {r["site_id"]: r for r in await db.fetch("SELECT * FROM site_forecasts")}
    busy, quiet, new = (seeded.site_ids[s] for s in ("busy", "quiet", "new"))
    assert set(stored) == {busy, quiet}  # the new site has no history; mars failed
    assert {stored[s]["method"] for s in stored} == {"weekly-profile+ar"}
    assert stored[busy]["trained_to"] == seeded.end + STEP and stored[busy]["trained_rows"] > DAYS * 280
    model = await db.fetchval("SELECT model->'holidays' FROM site_forecasts WHERE site_id = $1", busy)
    assert str((datetime.fromisoformat(HOLIDAY) - datetime(1970, 1, 1)).days) in model
    assert await db.fetchval("SELECT count(*) FROM site_counts_5m WHERE site_id = $1", new) == 0
    assert await db.fetchval("SELECT counted_to FROM site_counts_horizon WHERE site_id = $1", new) is not None

    again = await run_forecasts(db, now=now, history_days=DAYS, refit_s=86400, budget_s=60)
    assert (again.refitted, again.failed) == (0, 0)  # mars is not retried before refit_s
    assert again.counts.rows <= 4 * 13  # only the last hour of the sites with data is recounted
    assert "Mars/Olympus_Mons" in await db.fetchval("SELECT error FROM forecast_failures")
    assert await db.fetchval("SELECT max(fitted_at) FROM site_forecasts") == now


@pytest.mark.mosquitto
async def test_a_running_ingest_refits_in_its_maintenance(database: str, db: asyncpg.Connection,
                                                         broker: Mosquitto, topic_prefix: str) -> None:
    await seed_history(db, days=DAYS, now=datetime.now(UTC))
    settings = settings_for(database, broker.url, topic_prefix, forecast_history_days=DAYS)
    async with running_ingest(settings):
        async def fitted() -> bool:
            return await db.fetchval("SELECT count(*) FROM site_forecasts") == 2
        await wait_until(fitted, 30, "the maintenance of a running ingest fitted both sites")


async def test_provision_keeps_the_files_holidays(db: asyncpg.Connection) -> None:
    data = site_file()
    first = await provision(db, parse_site_file(data))
    assert first.counts["holidays"].created == 2
    assert (await provision(db, parse_site_file(data))).changed == 0
    data["tenant"]["holidays"] = [{"date": HOLIDAY, "name": "Strike day"}]
    report = await provision(db, parse_site_file(data))
    assert (report.counts["holidays"].updated, report.counts["holidays"].removed) == (1, 1)
    rows = await db.fetch("SELECT day::text, name FROM tenant_holidays")
    assert [tuple(r) for r in rows] == [(HOLIDAY, "Strike day")]


async def test_forecast_route_fallback_validation_ranking_and_cache(database: str,
                                                                    db: asyncpg.Connection) -> None:
    now = datetime.now(UTC)
    await seed_history(db, days=DAYS, now=now)
    await run_forecasts(db, now=now, history_days=DAYS, refit_s=86400, budget_s=60)
    app = app_for(database, cache_ttl_s=60)
    async with asgi_client(app) as c:
        r = await c.get(f"/v1/sites/{TENANT}/busy/forecast")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["method"] == "weekly-profile+ar" and body["capacity"] == 20 and body["note"] is None
        assert [h["minutes"] for h in body["horizons"]] == [15, 30, 60]
        for h in body["horizons"]:
            assert 0 <= h["lo80"] <= round(h["free"]) <= h["hi80"] <= 20
        assert body["fitted_at"] is not None and body["observed_at"] is not None

        # a hit: the same bytes, from the cache, no query
        hits = lookups("hit")
        again = await c.get(f"/v1/sites/{TENANT}/busy/forecast")
        assert again.content == r.content and lookups("hit") == hits + 1

        odd = (await c.get(f"/v1/sites/{TENANT}/quiet/forecast", params={"horizons": "1,120,45,45"})).json()
        assert [h["minutes"] for h in odd["horizons"]] == [1, 120, 45]

        new = (await c.get(f"/v1/sites/{TENANT}/new/forecast")).json()
        assert new["method"] == "none" and new["horizons"] == []  # never observed
        await db.execute(
            """INSERT INTO space_state (space_id, state, observed_at, source, gateway_id, seq, changed_at)
               SELECT sp.id, 'free', now(), 'sensor', (SELECT id FROM gateways LIMIT 1), 1, now()
               FROM spaces sp JOIN sites si ON si.id = sp.site_id WHERE si.slug = 'new'""")
        app.state.cache.clear()  # as the live feed does on ingest's NOTIFY
        new = (await c.get(f"/v1/sites/{TENANT}/new/forecast")).json()
        assert new["method"] == "persistence" and "no model" in new["note"]
        assert [h["free"] for h in new["horizons"]] == [5.0, 5.0, 5.0]

        for bad in ("0", "121", "15,abc", "", "١٥", ",".join(str(m) for m in range(1, 14))):
            r = await c.get(f"/v1/sites/{TENANT}/busy/forecast", params={"horizons": bad})
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["detail"][0]["loc"] == ["query", "horizons"]
        assert (await c.get(f"/v1/sites/{TENANT}/nowhere/forecast")).status_code == 404

        near = {"near": "29.6,52.5", "arrive_in": "20"}
        ranked = (await c.get("/v1/sites", params=near)).json()
        expected = [s["forecast"]["free"] for s in ranked]
        assert expected == sorted(expected, reverse=True) and len(ranked) == 3
        assert all(s["forecast"]["minutes"] == 20 for s in ranked)
        assert {s["site"]: s["forecast"]["method"] for s in ranked} == {
            "busy": "weekly-profile+ar", "quiet": "weekly-profile+ar", "new": "persistence"}
        plain = (await c.get("/v1/sites", params={"near": "29.6,52.5"})).json()
        assert "forecast" not in plain[0] and [s["site"] for s in plain] == ["busy", "quiet", "new"]
        for params in ({"arrive_in": "20"}, {"near": "29.6,52.5", "arrive_in": "121"}):
            r = await c.get("/v1/sites", params=params)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "arrive_in"]
