"""Provisioning a site file into real PostgreSQL: idempotent, bindings follow the file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from dashboard_api import ProvisionError
from dashboard_api.provision import provision
from occupancy.sitefile import parse_site_file
from parkbazaar.cli import main

TABLES = ("tenants", "sites", "zones", "spaces", "gateways", "gateway_spaces", "devices",
          "device_spaces")


@pytest.fixture
def shiraz(examples_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((examples_dir / "shiraz.yaml").read_text("utf-8"))
    return data


async def _snapshot(db: asyncpg.Connection) -> dict[str, list[asyncpg.Record]]:
    return {t: await db.fetch(f"SELECT * FROM {t} ORDER BY 1, 2") for t in TABLES}


async def test_shiraz_loads_every_row(db: asyncpg.Connection, shiraz: dict[str, Any]) -> None:
    report = await provision(db, parse_site_file(shiraz))
    assert report.counts["sites"].created == 2
    assert report.counts["zones"].created == 5
    assert report.counts["spaces"].created == 128 + 66
    assert report.counts["gateways"].created == 2
    assert report.counts["bindings"].created == 128 + 66
    assert await db.fetchval("SELECT count(*) FROM spaces") == 194
    attrs = await db.fetchval("SELECT attributes FROM spaces WHERE slug = 'stall-101'")
    assert '"vendor": "Karimi"' in attrs
    hours = await db.fetchval("SELECT opening_hours->>'close' FROM sites WHERE slug='fruit-market'")
    assert hours == "21:00"


async def test_second_run_changes_nothing(db: asyncpg.Connection, shiraz: dict[str, Any]) -> None:
    sf = parse_site_file(shiraz)
    first = await provision(db, sf)
    before = await _snapshot(db)
    second = await provision(db, sf)
    assert first.created > 0
    assert second.created == 0
    assert second.changed == 0
    assert await _snapshot(db) == before


async def test_changes_update_and_bindings_follow_the_file(
    db: asyncpg.Connection, shiraz: dict[str, Any]
) -> None:
    await provision(db, parse_site_file(shiraz))
    changed = copy.deepcopy(shiraz)
    changed["sites"][0]["name"] = "Karim Khan Parking"
    changed["sites"][0]["zones"][2]["spaces"] = {"prefix": "C-", "count": 30}  # C-031, C-032 gone
    changed["gateways"] = [changed["gateways"][0]]  # gw-fruit-market left the file
    report = await provision(db, parse_site_file(changed))
    assert report.counts["sites"].updated == 1
    assert report.counts["bindings"].removed == 66 + 2
    assert report.orphan_spaces == ("central-lot/C-031", "central-lot/C-032")
    assert report.orphan_gateways == ("gw-fruit-market",)
    assert await db.fetchval("SELECT count(*) FROM spaces") == 194  # never deleted silently
    assert await db.fetchval("SELECT count(*) FROM gateway_spaces") == 126


async def test_devices_and_camera_polygons(db: asyncpg.Connection, shiraz: dict[str, Any]) -> None:
    data = copy.deepcopy(shiraz)
    square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]
    data["sites"][0]["devices"] = [
        {"id": "cam-1", "kind": "camera", "spaces": {"A-001": square, "A-002": square}},
        {"id": "lora-7", "kind": "lorawan", "dev_eui": "70B3D57ED0001234", "spaces": ["B-001"],
         "occupied_path": "object.occupied"},
    ]
    report = await provision(db, parse_site_file(data))
    assert report.counts["devices"].created == 2
    assert report.counts["device_spaces"].created == 3
    rows = await db.fetch(
        """SELECT d.slug, d.dev_eui, g.slug AS gw, s.slug AS space, ds.polygon
           FROM device_spaces ds JOIN devices d ON d.id = ds.device_id
           JOIN spaces s ON s.id = ds.space_id JOIN gateways g ON g.id = d.gateway_id
           ORDER BY 1, 4"""
    )
    assert [(r["slug"], r["space"], r["gw"]) for r in rows] == [
        ("cam-1", "A-001", "gw-central-lot"), ("cam-1", "A-002", "gw-central-lot"),
        ("lora-7", "B-001", "gw-central-lot"),
    ]
    assert rows[2]["dev_eui"] == "70b3d57ed0001234"
    data["sites"][0]["devices"][0]["spaces"] = {"A-001": square}
    again = await provision(db, parse_site_file(data))
    assert again.counts["device_spaces"] .removed == 1
    assert again.created == 0


async def test_device_naming_an_unknown_space_writes_nothing(
    db: asyncpg.Connection, shiraz: dict[str, Any]
) -> None:
    data = copy.deepcopy(shiraz)
    data["sites"][1]["devices"] = [{"id": "s-1", "kind": "sensor", "spaces": ["stall-999"]}]
    with pytest.raises(ProvisionError, match="stall-999"):
        await provision(db, parse_site_file(data))
    assert await db.fetchval("SELECT count(*) FROM spaces") == 0


async def test_unmigrated_database_is_refused(empty_database: str, shiraz: dict[str, Any]) -> None:
    con = await asyncpg.connect(empty_database)
    try:
        with pytest.raises(ProvisionError, match="parkbazaar migrate"):
            await provision(con, parse_site_file(shiraz))
    finally:
        await con.close()


def test_cli_provisions_and_reports(
    database: str, examples_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PARKBAZAAR_DATABASE_URL", database)
    assert main(["provision", str(examples_dir / "shiraz.yaml")]) == 0
    assert "tenant shiraz: " in capsys.readouterr().out
    assert main(["provision", str(examples_dir / "shiraz.yaml")]) == 0
    assert "tenant shiraz: 0 new, 0 changed rows" in capsys.readouterr().out


def test_cli_names_the_bad_key(
    tmp_path: Path, shiraz: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PARKBAZAAR_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    shiraz["sites"][1]["kind"] = "bazaar"
    shiraz["sites"][0]["lat"] = 123
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(shiraz, allow_unicode=True), "utf-8")
    assert main(["provision", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: sites.1.kind: " in err
    assert f"{bad}: sites.0.lat: " in err


def test_cli_unreadable_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("tenant: [unclosed\n", "utf-8")
    assert main(["provision", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
