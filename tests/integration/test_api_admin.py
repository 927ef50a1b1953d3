"""Operators provision over REST: create, update, retire (history kept), gateway credentials
stored hashed and shown once, layout import, every write audited; `parkbazaar token create`."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import asyncpg

from dashboard_api.auth import verify_secret
from tests.support.api import SITE_FILE, TENANT, app_for, asgi_client, observe, seed_city, token

PKLOT = """<?xml version="1.0"?><parking id="cam">
<space id="1" occupied="0"><contour>
<point x="1" y="1"/><point x="9" y="1"/><point x="9" y="9"/></contour></space>
<space id="2" occupied="1"><contour>
<point x="11" y="1"/><point x="19" y="1"/><point x="19" y="9"/></contour></space>
</parking>"""


async def test_provision_over_rest(database: str, db: asyncpg.Connection) -> None:
    await seed_city(database)
    auth = {"Authorization": f"Bearer {await token(database, TENANT, 'admin')}"}
    base = f"/v1/admin/{TENANT}"
    async with asgi_client(app_for(database)) as c:
        r = await c.post(
            f"{base}/sites",
            headers=auth,
            json={
                "id": "lot-new",
                "kind": "parking",
                "name": "New lot",
                "lat": 29.7,
                "lon": 52.6,
                "opening_hours": {"open": "06:00", "close": "22:00"},
            },
        )
        assert r.status_code == 201, r.text
        assert (
            await c.post(
                f"{base}/sites",
                headers=auth,
                json={"id": "lot-new", "kind": "parking", "name": "x", "lat": 1, "lon": 1},
            )
        ).status_code == 409
        assert (
            await c.post(f"{base}/sites/lot-new/zones", headers=auth, json={"id": "L1"})
        ).status_code == 201
        for space in ("n1", "n2", "n3"):
            r = await c.post(f"{base}/sites/lot-new/spaces", headers=auth, json={"id": space, "zone": "L1"})
            assert r.status_code == 201, r.text
        r = await c.patch(
            f"{base}/sites/lot-new/spaces/n1", headers=auth, json={"attributes": {"ev_charger": True}}
        )
        assert r.status_code == 200
        r = await c.patch(f"{base}/sites/lot-new", headers=auth, json={"name": "New lot (east)"})
        assert r.status_code == 200

        r = await c.post(f"{base}/gateways", headers=auth, json={"id": "gw-new", "sites": ["lot-new"]})
        assert r.status_code == 201
        creds = r.json()
        stored = await db.fetchval("SELECT secret_hash FROM gateways WHERE slug = 'gw-new'")
        assert creds["secret"] not in stored and verify_secret(creds["secret"], stored)
        assert (
            await db.fetchval(
                "SELECT count(*) FROM gateway_spaces gs JOIN gateways g ON g.id = gs.gateway_id "
                "WHERE g.slug = 'gw-new'"
            )
            == 3
        )
        r = await c.post(f"{base}/gateways/gw-new/credentials", headers=auth)
        new_hash = await db.fetchval("SELECT secret_hash FROM gateways WHERE slug = 'gw-new'")
        assert verify_secret(r.json()["secret"], new_hash) and not verify_secret(creds["secret"], new_hash)
        r = await c.delete(f"{base}/gateways/gw-new/credentials", headers=auth)  # revoke: no login left
        assert r.status_code == 200 and r.json()["credentials"] == "revoked"
        assert await db.fetchval("SELECT secret_hash FROM gateways WHERE slug = 'gw-new'") is None
        r = await c.post(f"{base}/gateways/gw-new/credentials", headers=auth)  # and issue again
        assert verify_secret(r.json()["secret"], await db.fetchval(
            "SELECT secret_hash FROM gateways WHERE slug = 'gw-new'"))

        r = await c.post(
            f"{base}/sites/lot-new/devices",
            headers=auth,
            json={"id": "cam-1", "kind": "camera", "gateway": "gw-new", "spaces": ["n1"]},
        )
        assert r.status_code == 201, r.text
        r = await c.put(
            f"{base}/sites/lot-new/devices/cam-1/polygons",
            headers={**auth, "content-type": "text/plain"},
            params={"format": "pklot", "prefix": "n"},
            content=PKLOT,
        )
        assert r.status_code == 200, r.text
        polygons = await db.fetch(
            "SELECT sp.slug, ds.polygon FROM device_spaces ds JOIN spaces sp "
            "ON sp.id = ds.space_id JOIN devices d ON d.id = ds.device_id WHERE d.slug = 'cam-1' ORDER BY 1"
        )
        assert [p["slug"] for p in polygons] == ["n1", "n2"]
        r = await c.put(
            f"{base}/sites/lot-new/devices/cam-1/polygons",
            headers={**auth, "content-type": "text/plain"},
            params={"format": "ultralytics", "prefix": "n"},
            content='[{"points": [[0,0],[1,0],[1,1]]}]',
        )
        assert r.status_code == 200
        r = await c.put(
            f"{base}/sites/lot-new/devices/cam-1/polygons",
            headers={**auth, "content-type": "text/plain"},
            params={"format": "pklot"},
            content="<nope",
        )
        assert r.status_code == 422

        # retiring keeps history: n2 has an event; after retiring it no longer counts
        await observe(
            db, "lot-new", "n2", "occupied", datetime.now(UTC) - timedelta(seconds=5), 1, notify=False
        )
        assert (await c.get(f"/v1/sites/{TENANT}/lot-new")).json()["total"] == 3
        assert (await c.delete(f"{base}/sites/lot-new/spaces/n2", headers=auth)).status_code == 200
        assert (await c.get(f"/v1/sites/{TENANT}/lot-new")).json()["total"] == 2
        assert await db.fetchval("SELECT count(*) FROM occupancy_events") == 1
        assert (await c.delete(f"{base}/gateways/gw-new", headers=auth)).status_code == 200
        assert (await c.delete(f"{base}/sites/lot-new", headers=auth)).status_code == 200
        assert (await c.get(f"/v1/sites/{TENANT}/lot-new")).status_code == 404
        assert (await c.delete(f"{base}/sites/lot-new", headers=auth)).status_code == 404

        changed = {
            **SITE_FILE,
            "sites": [
                *SITE_FILE["sites"],
                {
                    "id": "lot-c",
                    "kind": "parking",
                    "name": "C",
                    "lat": 1,
                    "lon": 1,
                    "zones": [{"id": "m", "spaces": ["c1"]}],
                },
            ],
        }
        r = await c.put(f"{base}/layout", headers=auth, json=changed)
        assert r.status_code == 200 and r.json()["created"] >= 3
        r = await c.put(f"{base}/layout", headers=auth, json={**changed, "tenant": {"id": "x", "name": "X"}})
        assert r.status_code == 422

        r = await c.get(f"{base}/audit", headers=auth, params={"limit": 100})
        actions = [a["action"] for a in r.json()]
        for action in (
            "site.create",
            "zone.create",
            "space.create",
            "space.update",
            "site.update",
            "gateway.create",
            "gateway.credentials",
            "gateway.credentials.revoke",
            "device.create",
            "device.update",
            "space.retire",
            "gateway.retire",
            "site.retire",
            "layout.import",
            "token.create",
        ):
            assert action in actions, action
        assert all(a["actor"].startswith("token:") for a in r.json() if a["action"] != "token.create")
        assert not any(creds["secret"] in str(a) for a in r.json())


async def test_token_create_cli(database: str, db: asyncpg.Connection) -> None:
    await seed_city(database)
    env = {"PARKBAZAAR_DATABASE_URL": database, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(  # noqa: ASYNC221 (the CLI under test)
        [
            sys.executable,
            "-m",
            "parkbazaar",
            "token",
            "create",
            "--tenant",
            TENANT,
            "--role",
            "manager",
            "--site",
            "market",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    tok = out.stdout.strip()
    assert tok.startswith("pbz_") and len(tok) > 40
    row = await db.fetchrow("SELECT role, sites, token_hash FROM api_tokens")
    assert row["role"] == "manager" and row["sites"] == ["market"] and tok not in row["token_hash"]
    bad = subprocess.run(  # noqa: ASYNC221
        [
            sys.executable,
            "-m",
            "parkbazaar",
            "token",
            "create",
            "--tenant",
            TENANT,
            "--role",
            "manager",
            "--site",
            "nope",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "nope" in bad.stderr
