"""The site file's LoRaWAN keys: a lorawan device has a DevEUI, one space of the file, and
exactly one of a known model or an occupied path; errors name the key path and the value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from occupancy.lorawan.models import names
from occupancy.sitefile import SiteFileError, device_problems, parse_site_file, read_site_file
from tests.support.lorawan_registry import TEST_MODEL, register_test_model

EUI = "70B3D57ED0001234"
FILE: dict[str, Any] = {
    "tenant": {"id": "t", "name": "T"},
    "sites": [
        {"id": "lot", "kind": "parking", "name": "Lot", "lat": 1, "lon": 1,
         "zones": [{"id": "A", "spaces": ["A-1", "A-2", "A-3"]}],
         "devices": [{"id": "cam", "kind": "camera", "spaces": ["A-3"]},
                     {"id": "b1", "kind": "lorawan", "dev_eui": EUI, "spaces": ["A-1"], "model": TEST_MODEL},
                     {"id": "b2", "kind": "lorawan", "dev_eui": "70b3d57ed0001235", "spaces": ["A-2"],
                      "occupied_path": "object.occupied"}]},
        {"id": "two", "kind": "parking", "name": "Two", "lat": 1, "lon": 1,
         "zones": [{"id": "B", "spaces": ["B-1"]}],
         "devices": [{"id": "b3", "kind": "lorawan", "dev_eui": "70b3d57ed0001236", "spaces": ["lot/A-3"],
                      "occupied_path": "object.status.parked"}]},
    ],
}


@pytest.fixture(autouse=True)
def known_model(monkeypatch: pytest.MonkeyPatch) -> str:
    return register_test_model(monkeypatch)


def _with(site: int, device: int, **keys: Any) -> dict[str, Any]:
    data = copy.deepcopy(FILE)
    d = data["sites"][site]["devices"][device]
    for key, value in keys.items():
        if value is None:
            d.pop(key, None)
        else:
            d[key] = value
    return data


def _errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_site_file(data)
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in info.value.errors()]


def test_lorawan_devices_name_a_model_or_a_path() -> None:
    sf = parse_site_file(FILE)
    b1, b2 = sf.sites[0].devices[1:]
    assert (b1.model, b1.occupied_path) == (TEST_MODEL, None)
    assert (b2.model, b2.occupied_path) == (None, "object.occupied")
    assert sf.sites[1].devices[0].spaces == ["lot/A-3"]  # another site's space, as site/space


def test_an_unknown_model_is_named_with_the_known_ones() -> None:
    assert _errors(_with(0, 1, model="bosch-tpl999")) == [
        f"sites.0.devices.1.model: unknown device model 'bosch-tpl999'; known: {', '.join(names())}"]


@pytest.mark.parametrize(("keys", "where", "says"), [
    ({"model": None}, "model", "test-bay) or an occupied_path"),
    ({"occupied_path": "object.x"}, "occupied_path", "not both (model 'test-bay', occupied_path 'object.x')"),
    ({"model": None, "occupied_path": "data.occupied"}, "occupied_path",
     "'data.occupied' is not a dotted path"),
    ({"model": None, "occupied_path": "object."}, "occupied_path", "'object.' is not a dotted path"),
    ({"dev_eui": None}, "dev_eui", "a lorawan device needs its dev_eui"),
    ({"spaces": ["A-1", "A-2"]}, "spaces", "exactly one space (a list of one space id), got ['A-1', 'A-2']"),
    ({"spaces": []}, "spaces", "exactly one space"),
    ({"spaces": {"A-1": [[0, 0], [1, 0], [1, 1]]}}, "spaces", "got ['A-1']"),
])
def test_each_rule_of_one_device(keys: dict[str, Any], where: str, says: str) -> None:
    found = _errors(_with(0, 1, **keys))
    assert len(found) == 1 and found[0].startswith(f"sites.0.devices.1.{where}: ") and says in found[0], found


def test_only_lorawan_devices_have_a_model_or_path() -> None:
    assert _errors(_with(0, 0, model=TEST_MODEL, occupied_path="object.occupied")) == [
        "sites.0.devices.0.model: model is for lorawan devices only, not a camera ('test-bay')",
        "sites.0.devices.0.occupied_path: occupied_path is for lorawan devices only, not a camera "
        "('object.occupied')"]


def test_dev_euis_are_unique_in_the_file_in_any_case() -> None:
    assert _errors(_with(1, 0, dev_eui=EUI.lower())) == [
        "sites.1.devices.0.dev_eui: DevEUI '70b3d57ed0001234' is device lot/b1's already in this file"]


@pytest.mark.parametrize(("space", "says"), [
    ("A-9", "unknown space 'A-9' (not a space of site two)"),
    ("nowhere/A-1", "unknown space 'nowhere/A-1' (not a space of site nowhere)"),
    ("lot/A-1", "space lot/A-1 is watched by lorawan device lot/b1 already"),
])
def test_the_space_is_one_of_the_file_and_no_other_lorawan_device_s(space: str, says: str) -> None:
    assert _errors(_with(1, 0, spaces=[space])) == [f"sites.1.devices.0.spaces.0: {says}"]


def test_read_site_file_puts_file_and_key_path_on_each_line(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(_with(0, 2, occupied_path=None, model="nope")), "utf-8")
    with pytest.raises(SiteFileError) as info:
        read_site_file(path)
    assert str(info.value) == (f"{path}: sites.0.devices.2.model: unknown device model 'nope'; "
                               f"known: {', '.join(names())}")


def test_device_problems_is_the_rule_the_api_applies_too() -> None:
    assert device_problems("lorawan", EUI, TEST_MODEL, None, ["A-1"]) == []
    assert device_problems("sensor", None, None, None, ["A-1", "A-2"]) == []
    found = device_problems("lorawan", None, None, None, [])
    assert [loc for loc, _, _ in found] == [("dev_eui",), ("spaces",), ("model",)]
