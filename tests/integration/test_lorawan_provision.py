"""Binding LoRaWAN sensors to spaces: a site file (`provision`, `PUT /layout`) and the admin
API bind a DevEUI and a device model (or a field path) to one space, rebind it, refuse an
unknown model, two spaces or a DevEUI another device holds, and read a gateway's bindings
in the shape of its config's `chirpstack.sensors`."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from dashboard_api import ProvisionConflict
from dashboard_api.provision import provision
from gateway.config import ChirpstackDevice, parse_gateway_config
from occupancy.lorawan.models import names
from occupancy.sitefile import parse_site_file
from tests.support.api import OTHER_FILE, SITE_FILE, TENANT, app_for, asgi_client, seed_city, token
from tests.support.lorawan_registry import TEST_MODEL, register_test_model

EUI = "70B3D57ED0001234"
BASE = f"/v1/admin/{TENANT}"


@pytest.fixture(autouse=True)
def known_model(monkeypatch: pytest.MonkeyPatch) -> str:
    return register_test_model(monkeypatch)


def _file(*devices: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(SITE_FILE)
    data["sites"][0]["devices"] += list(devices)
    return data


async def _devices(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        """SELECT d.slug, d.dev_eui, d.model, d.occupied_path, s.slug AS space FROM devices d
           JOIN device_spaces ds ON ds.device_id = d.id JOIN spaces s ON s.id = ds.space_id
           WHERE d.kind = 'lorawan' ORDER BY 1""")
    return [tuple(r.values()) for r in rows]


async def test_a_site_file_binds_and_rebinds(db: asyncpg.Connection) -> None:
    bay1 = {"id": "bay-1", "kind": "lorawan", "dev_eui": EUI, "spaces": ["a2"], "model": TEST_MODEL}
    bay2 = {"id": "bay-2", "kind": "lorawan", "dev_eui": "70b3d57ed0001235", "spaces": ["market/stall-002"],
            "occupied_path": "object.occupied"}
    await provision(db, parse_site_file(_file(bay1, bay2)))
    assert await _devices(db) == [("bay-1", EUI.lower(), TEST_MODEL, None, "a2"),
                                  ("bay-2", "70b3d57ed0001235", None, "object.occupied", "stall-002")]
    assert (await provision(db, parse_site_file(_file(bay1, bay2)))).changed == 0

    moved = {k: v for k, v in bay1.items() if k != "model"} | {"spaces": ["a3"],
                                                                "occupied_path": "object.status.parked"}
    report = await provision(db, parse_site_file(_file(moved, bay2)))
    assert report.counts["devices"].updated == 1 and report.counts["device_spaces"].removed == 1
    assert (await _devices(db))[0] == ("bay-1", EUI.lower(), None, "object.status.parked", "a3")

    renamed = bay2 | {"id": "bay-9"}  # the DevEUI stays on bay-2 until it is retired
    with pytest.raises(ProvisionConflict, match="DevEUI 70b3d57ed0001235 is held by device lot-a/bay-2"):
        await provision(db, parse_site_file(_file(moved, renamed)))
    other = copy.deepcopy(OTHER_FILE)
    other["sites"][0]["devices"] = [{"id": "x", "kind": "lorawan", "dev_eui": EUI, "spaces": ["z1"],
                                     "model": TEST_MODEL}]
    with pytest.raises(ProvisionConflict, match=f"DevEUI {EUI.lower()} is held by a device of another"):
        await provision(db, parse_site_file(other))
    assert len(await _devices(db)) == 2  # nothing of either run was written


def _refused(r: httpx.Response, status: int, says: str) -> None:
    assert r.status_code == status, r.text
    assert says in r.text, r.text


def _binds_a_gateway(tmp: Path, answer: bytes, space: str) -> None:
    """The API's answer saved as is is a chirpstack connection's ``sensors_file``."""
    (tmp / "sensors.json").write_bytes(answer)
    config = parse_gateway_config(
        {"tenant": TENANT, "gateway": "gw-1", "broker": {"url": "mqtt://127.0.0.1:1883"},
         "devices": [{"id": "cs", "kind": "chirpstack", "broker": {"url": "mqtt://127.0.0.1:1883"},
                      "application_id": "app-1", "sensors_file": "sensors.json"}]}, tmp, "gw.yaml")
    device = config.devices[0]
    assert isinstance(device, ChirpstackDevice)
    assert [(s.dev_eui, s.space) for s in device.all_sensors()] == [(EUI.lower(), space)]


async def test_the_admin_api_binds_checks_and_reads(database: str, tmp_path: Path) -> None:
    await seed_city(database)
    auth = {"Authorization": f"Bearer {await token(database, TENANT, 'admin')}"}
    bay = {"id": "bay-1", "kind": "lorawan", "dev_eui": EUI, "spaces": ["a2"], "model": TEST_MODEL}
    async with asgi_client(app_for(database)) as c:
        post = f"{BASE}/sites/lot-a/devices"
        _refused(await c.post(post, headers=auth, json=bay | {"model": "nope"}), 422,
                 f"model: unknown device model 'nope'; known: {', '.join(names())}")
        _refused(await c.post(post, headers=auth, json=bay | {"spaces": ["a2", "a3"]}), 422,
                 "spaces: a lorawan device watches exactly one space")
        _refused(await c.post(post, headers=auth, json={"id": "s9", "kind": "sensor", "model": TEST_MODEL}),
                 422, "model: model is for lorawan devices only")
        assert (await c.post(post, headers=auth, json=bay)).status_code == 201
        _refused(await c.post(f"{BASE}/sites/market/devices", headers=auth,
                              json=bay | {"id": "bay-2", "dev_eui": EUI.lower(), "spaces": ["stall-001"]}),
                 409, f"DevEUI {EUI.lower()} is held by device lot-a/bay-1")
        _refused(await c.post(post, headers=auth, json=bay | {"id": "bay-3", "dev_eui": "70b3d57ed0009999"}),
                 409, "space 'a2' is watched by lorawan device 'bay-1'")

        r = await c.get(f"{post}/bay-1", headers=auth)
        assert r.json() == {"id": "bay-1", "kind": "lorawan", "dev_eui": EUI.lower(), "model": TEST_MODEL,
                            "occupied_path": None, "gateway": None, "spaces": ["a2"]}
        lorawan = f"{BASE}/gateways/gw-1/lorawan"
        answer = await c.get(lorawan, headers=auth)
        assert answer.json() == {
            "sensors": [{"dev_eui": EUI.lower(), "model": TEST_MODEL, "space": "lot-a/a2"}]}
        _binds_a_gateway(tmp_path, answer.content, "lot-a/a2")

        _refused(await c.patch(f"{post}/bay-1", headers=auth, json={"occupied_path": "object.occupied"}),
                 422, "occupied_path: give a model or an occupied_path, not both")
        r = await c.patch(f"{post}/bay-1", headers=auth,
                          json={"spaces": ["a3"], "model": None, "occupied_path": "object.occupied"})
        assert r.status_code == 200, r.text
        assert (await c.get(lorawan, headers=auth)).json() == {
            "sensors": [{"dev_eui": EUI.lower(), "occupied_path": "object.occupied", "space": "lot-a/a3"}]}
        audit = (await c.get(f"{BASE}/audit", headers=auth, params={"limit": 1})).json()[0]
        assert (audit["action"], audit["detail"]["occupied_path"]) == ("device.update", "object.occupied")

        layout = _file(bay | {"id": "bay-7", "spaces": ["a4"]})
        _refused(await c.put(f"{BASE}/layout", headers=auth, json=layout), 409,
                 f"DevEUI {EUI.lower()} is held by device lot-a/bay-1")
        assert (await c.delete(f"{post}/bay-1", headers=auth)).status_code == 200
        assert (await c.get(lorawan, headers=auth)).json() == {"sensors": []}
        r = await c.put(f"{BASE}/layout", headers=auth, json=layout)  # the DevEUI is free again
        assert r.status_code == 200, r.text
        assert (await c.get(lorawan, headers=auth)).json()["sensors"][0]["space"] == "lot-a/a4"
        _refused(await c.get(f"{BASE}/gateways/gw-none/lorawan", headers=auth), 404, "gw-none")
