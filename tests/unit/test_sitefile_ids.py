"""Site files refuse repeated ids at their own key, naming the value; a YAML error names the
file, line and column (issue 16, item 2). Pure: files in tmp_path, no services."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from occupancy.sitefile import SiteFileError, read_site_file

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "shiraz.yaml").read_text())


def _second_site(d: dict[str, Any]) -> None:
    d["sites"].append(copy.deepcopy(d["sites"][0]))


def _zone(d: dict[str, Any]) -> None:
    d["sites"][0]["zones"][2]["id"] = "A"


def _gateway(d: dict[str, Any]) -> None:
    d["gateways"].append({"id": "gw-central-lot", "sites": []})


def _device(d: dict[str, Any]) -> None:
    d["sites"][0]["devices"] = [{"id": "cam-1", "kind": "camera"}, {"id": "cam-1", "kind": "sensor"}]


def _space_across_zones(d: dict[str, Any]) -> None:
    d["sites"][0]["zones"][2]["spaces"] = ["C-1", "A-007"]


def _space_in_a_list(d: dict[str, Any]) -> None:
    d["sites"][0]["zones"][2]["spaces"] = ["C-1", "C-2", "C-1"]


@pytest.mark.parametrize(("change", "line"), [
    (_second_site, "sites.2.id: duplicate site id 'central-lot' (first at sites.0.id)"),
    (_zone, "sites.0.zones.2.id: duplicate zone id 'A' (first at zones.0.id)"),
    (_gateway, "gateways.2.id: duplicate gateway id 'gw-central-lot' (first at gateways.0.id)"),
    (_device, "sites.0.devices.1.id: duplicate device id 'cam-1' (first at devices.0.id)"),
    (_space_across_zones,
     "sites.0.zones.2.spaces.1: duplicate space id in site central-lot 'A-007' (first at zones.0.spaces)"),
    (_space_in_a_list,
     "sites.0.zones.2.spaces.2: duplicate space id in site central-lot 'C-1' (first at zones.2.spaces.0)"),
])
def test_a_repeated_id_is_refused_at_its_key(tmp_path: Path, change: Callable[[dict[str, Any]], None],
                                              line: str) -> None:
    data = copy.deepcopy(EXAMPLE)
    change(data)
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(SiteFileError) as info:
        read_site_file(path)
    assert f"{path}: {line}" in str(info.value).splitlines()


def test_bindings_name_the_key_and_value(tmp_path: Path) -> None:
    data = copy.deepcopy(EXAMPLE)
    data["gateways"][0]["sites"] = ["central-lot", "nowhere"]
    data["gateways"][1]["spaces"] = ["fruit-market/stall-999"]
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(SiteFileError) as info:
        read_site_file(path)
    assert str(info.value).splitlines() == [
        f"{path}: gateways.0.sites.1: unknown site 'nowhere'",
        f"{path}: gateways.1.spaces.0: unknown space 'fruit-market/stall-999'"]


def test_a_bad_value_is_named(tmp_path: Path) -> None:
    data = copy.deepcopy(EXAMPLE)
    data["sites"][0]["kind"] = "garage"
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(SiteFileError, match=r"sites\.0\.kind: Input should be 'parking' or 'market' "
                                            r"\(got 'garage'\)"):
        read_site_file(path)


def test_a_yaml_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text("tenant: {id: x\nsites: []\n", "utf-8")
    with pytest.raises(SiteFileError) as info:
        read_site_file(path)
    text = str(info.value)
    assert text.startswith(f"{path}: cannot read site file: line 2, column 6: ") and "<unicode" not in text
