"""The ``chirpstack`` entry of the gateway config: sensors, site-file bindings, errors by key,
and what ``gateway check`` shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import ChirpstackDevice, GatewayConfig, GatewayConfigError, parse_gateway_config
from parkbazaar.cli import main

EUI1, EUI2, EUI3 = "70B3D5E75E000001", "70b3d5e75e000002", "70b3d5e75e000003"


NWAVE, BOSCH = "nwave-nps405", "bosch-tpl110"


def chirpstack(**over: Any) -> dict[str, Any]:
    return {"id": "cs", "kind": "chirpstack", "broker": {"url": "mqtt://127.0.0.1:1883"},
            "application_id": "app-1",
            "sensors": [{"dev_eui": EUI1, "model": NWAVE, "space": "lot/B-001"},
                        {"dev_eui": EUI2, "occupied_path": "object.occupied", "space": "lot/B-002",
                         "id": "bay-2"}], **over}


def check(tmp: Path, device: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    """What ``parkbazaar gateway check`` prints for a config with ``device``."""
    data = {"tenant": "t1", "gateway": "gw1", "broker": {"url": "mqtt://127.0.0.1:1883"},
            "devices": [device]}
    (tmp / "gw.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["gateway", "check", "--config", str(tmp / "gw.yaml")]) == 0
    return capsys.readouterr().out


def config(tmp: Path, device: dict[str, Any], **over: Any) -> GatewayConfig:
    data = {"tenant": "t1", "gateway": "gw1", "broker": {"url": "mqtt://127.0.0.1:1883"},
            "devices": [device], **over}
    return parse_gateway_config(data, tmp, "gw.yaml")


def test_sensors_are_bound_and_dev_euis_lowercased(tmp_path: Path) -> None:
    c = config(tmp_path, chirpstack())
    d = c.devices[0]
    assert isinstance(d, ChirpstackDevice)
    assert [s.device_id for s in d.all_sensors()] == [EUI1.lower(), "bay-2"]
    assert [str(r) for r in c.bound_spaces()] == ["lot/B-001", "lot/B-002"]
    assert c.policy(d).stale_after_s == 90_000  # LoRaWAN sensors speak rarely
    assert d.application_ids() == ["app-1"]


@pytest.mark.parametrize(("sensor", "key", "message"), [
    ({"dev_eui": "70B3", "model": NWAVE, "space": "lot/B-3"}, "devices.0.sensors.2.dev_eui", "pattern"),
    ({"dev_eui": EUI3, "model": "nope", "space": "lot/B-3"}, "devices.0.sensors.2.model",
     "unknown device model 'nope'; known: .*nwave-nps405"),
    ({"dev_eui": EUI3, "space": "lot/B-3"}, "devices.0.sensors.2", "exactly one of model"),
    ({"dev_eui": EUI3, "model": NWAVE, "occupied_path": "object.x", "space": "lot/B-3"},
     "devices.0.sensors.2", "exactly one"),
    ({"dev_eui": EUI3, "occupied_path": "object..x", "space": "lot/B-3"},
     "devices.0.sensors.2.occupied_path", "pattern"),
    ({"dev_eui": EUI3, "model": NWAVE, "space": "B-3"}, "devices.0.sensors.2.space", ""),
    ({"dev_eui": EUI1.lower(), "model": NWAVE, "space": "lot/B-3"}, "devices.0", "dev_eui is listed twice"),
    ({"dev_eui": EUI3, "model": NWAVE, "space": "lot/B-001"}, "devices.0", "bound to sensors"),
])
def test_bad_sensors_name_the_file_and_key(tmp_path: Path, sensor: dict[str, Any], key: str,
                                           message: str) -> None:
    device = chirpstack()
    device["sensors"].append(sensor)
    with pytest.raises(GatewayConfigError, match=f"^gw.yaml: {key}: .*{message}"):
        config(tmp_path, device)


def test_a_sensor_outside_the_gateways_spaces_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match="space lot/B-002 is not in the gateway's spaces"):
        config(tmp_path, chirpstack(), spaces=["lot/B-001"])


def test_a_sensor_id_may_not_clash_with_a_device(tmp_path: Path) -> None:
    other = {"id": "bay-2", "kind": "simulated", "spaces": ["lot/X-1"]}
    with pytest.raises(GatewayConfigError, match="share an id"):
        parse_gateway_config({"tenant": "t1", "gateway": "gw1", "broker": {"url": "mqtt://h:1883"},
                              "devices": [chirpstack(), other]}, tmp_path, "gw.yaml")


def test_the_connections_broker_files_must_exist(tmp_path: Path) -> None:
    broker = {"url": "mqtts://cs.local:8883", "password_file": "cs.secret", "tls": {"ca": "ca.pem"}}
    with pytest.raises(GatewayConfigError) as err:
        config(tmp_path, chirpstack(broker=broker))
    assert "gw.yaml: devices.0.broker.password_file: no such file" in str(err.value)
    assert "gw.yaml: devices.0.broker.tls.ca: no such file" in str(err.value)


def test_application_ids_are_checked(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match=r"devices\.0\.application_id"):
        config(tmp_path, chirpstack(application_id=["a", "b/+"]))


def site_file(tmp: Path, devices: list[dict[str, Any]]) -> Path:
    data = {"tenant": {"id": "t1", "name": "T"},
            "sites": [{"id": "lot", "kind": "parking", "name": "Lot", "lat": 29.6, "lon": 52.5,
                       "zones": [{"id": "B", "spaces": {"prefix": "B-", "count": 6}}],
                       "devices": devices}],
            "gateways": [{"id": "gw1", "spaces": ["lot/B-001", "lot/B-002", "lot/B-003", "lot/B-004"]}]}
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_site_files_lorawan_devices_of_our_spaces_are_taken(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    site_file(tmp_path, [
        {"id": "s3", "kind": "lorawan", "dev_eui": EUI3, "model": BOSCH, "spaces": ["B-003"]},
        {"id": "s5", "kind": "lorawan", "dev_eui": "70b3d5e75e000005", "model": NWAVE,
         "spaces": ["B-005"]},  # not this gateway's space
        {"id": "s1", "kind": "lorawan", "dev_eui": EUI1, "occupied_path": "object.o",
         "spaces": ["B-001"]},  # also in the config: the config's binding wins
        {"id": "cam", "kind": "camera", "spaces": ["B-004"]}])
    c = config(tmp_path, chirpstack(site_file="site.yaml"))
    d = c.devices[0]
    assert isinstance(d, ChirpstackDevice)
    assert [(s.device_id, s.space, s.model) for s in d.all_sensors()] == [
        (EUI1.lower(), "lot/B-001", NWAVE), ("bay-2", "lot/B-002", None), ("s3", "lot/B-003", BOSCH)]
    text = check(tmp_path, chirpstack(site_file="site.yaml"), capsys)
    assert f"{EUI3} (id s3) → model bosch-tpl110 → lot/B-003  [site file]" in text
    assert f"{EUI1.lower()} → model nwave-nps405 → lot/B-001" in text
    assert "bay-2) → path object.occupied → lot/B-002" in text


def test_a_bad_site_file_sensor_names_the_site_files_key(tmp_path: Path) -> None:
    path = site_file(tmp_path, [{"id": "s3", "kind": "lorawan", "dev_eui": EUI3, "model": "gone",
                                 "spaces": ["B-003"]}])
    with pytest.raises(GatewayConfigError,
                       match=f"gw.yaml: devices.0.site_file: {path}: sites.0.devices.0.model: .*'gone'"):
        config(tmp_path, chirpstack(site_file="site.yaml"))


def test_a_missing_site_file_or_gateway_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match=r"devices\.0\.site_file: .*cannot read"):
        config(tmp_path, chirpstack(site_file="nope.yaml"))
    site_file(tmp_path, [])
    with pytest.raises(GatewayConfigError, match="gateway gw9 is not in the site file"):
        parse_gateway_config({"tenant": "t1", "gateway": "gw9", "broker": {"url": "mqtt://h:1883"},
                              "devices": [chirpstack(site_file="site.yaml")]}, tmp_path, "gw.yaml")


def test_the_check_shows_the_connection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = check(tmp_path, chirpstack(), capsys)
    assert "device cs (chirpstack): 2 LoRaWAN sensors, mqtt://127.0.0.1:1883" in text
    assert "application app-1" in text and "stale after 90000s" in text




def test_a_sensors_file_binds_its_entries_and_names_them_in_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sensors.json").write_text(json.dumps({"sensors": [
        {"dev_eui": EUI3, "model": BOSCH, "space": "lot/B-003"},
        {"dev_eui": EUI1, "model": BOSCH, "space": "lot/B-009"}]}), encoding="utf-8")  # EUI1: config wins
    d = config(tmp_path, chirpstack(sensors_file="sensors.json")).devices[0]
    assert isinstance(d, ChirpstackDevice)
    assert [(s.dev_eui, s.space) for s in d.all_sensors()] == [
        (EUI1.lower(), "lot/B-001"), (EUI2.lower(), "lot/B-002"), (EUI3.lower(), "lot/B-003")]
    assert f"{EUI3.lower()} → model bosch-tpl110 → lot/B-003  [sensors file]" in check(
        tmp_path, chirpstack(sensors_file="sensors.json"), capsys)
    (tmp_path / "bad.json").write_text(json.dumps([{"dev_eui": EUI3, "model": "gone", "space": "lot/B-3"}]),
                                       encoding="utf-8")
    with pytest.raises(GatewayConfigError,
                       match=r"gw.yaml: devices\.0\.sensors_file: sensors\.0\.model: .*'gone'"):
        config(tmp_path, chirpstack(sensors_file="bad.json"))
    (tmp_path / "odd.json").write_text('{"nothing": 1}', encoding="utf-8")
    with pytest.raises(GatewayConfigError, match=r"devices\.0\.sensors_file: .*odd.json holds neither"):
        config(tmp_path, chirpstack(sensors_file="odd.json"))
