"""The gateway config file: the example loads; every error names the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import GatewayConfigError, load_gateway_config, parse_gateway_config
from occupancy.ids import SpaceRef

REPO = Path(__file__).resolve().parents[2]


def base(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tenant": "t1", "gateway": "gw1", "broker": {"url": "mqtt://127.0.0.1:1883"},
        "devices": [{"id": "bus", "kind": "modbus", "host": "10.0.0.5",
                     "bays": [{"site": "lot", "prefix": "A-", "count": 3, "address": 10},
                              {"lot/B-1": 40}]}],
    }
    data.update(over)
    return data


def test_the_example_config_is_valid() -> None:
    config = load_gateway_config(REPO / "examples" / "gateway-central-lot.yaml")
    assert (config.tenant, config.gateway) == ("shiraz", "gw-central-lot")
    assert len(config.bound_spaces()) == 128
    assert config.outbox_path().name == "gw-central-lot.sqlite"


def test_bays_and_addresses_and_policy(tmp_path: Path) -> None:
    config = parse_gateway_config(base(stale_after_s=30, debounce={"confirm_readings": 3}), tmp_path)
    device = config.devices[0]
    assert device.kind == "modbus"
    assert device.address_map() == {SpaceRef.parse("lot/A-001"): 10, SpaceRef.parse("lot/A-002"): 11,
                                     SpaceRef.parse("lot/A-003"): 12, SpaceRef.parse("lot/B-1"): 40}
    policy = config.policy(device)
    assert (policy.stale_after_s, policy.confirm_readings) == (30, 3)
    assert config.outbox_path() == tmp_path / "state" / "gw1.sqlite"


def test_credentials_from_a_password_file_and_tls_paths(tmp_path: Path) -> None:
    (tmp_path / "gw.secret").write_text("s3cret\n")
    for name in ("ca.pem", "gw.pem", "gw.key"):
        (tmp_path / name).write_text("x")
    config = parse_gateway_config(base(broker={
        "url": "mqtts://broker.example:8883", "username": "gw1", "password_file": "gw.secret",
        "tls": {"ca": "ca.pem", "cert": "gw.pem", "key": "gw.key"}}), tmp_path)
    mqtt = config.mqtt()
    assert (mqtt.username, mqtt.password, mqtt.tls) == ("gw1", "s3cret", True)
    tls = config.tls()
    assert tls is not None and tls.ca_file == tmp_path / "ca.pem"


def test_the_broker_url_keeps_its_protocol(tmp_path: Path) -> None:
    config = parse_gateway_config(base(broker={"url": "mqtt://u:p@127.0.0.1:1883?protocol=4"}), tmp_path)
    mqtt = config.mqtt()
    assert (mqtt.protocol, mqtt.username, mqtt.password) == (4, "u", "p")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenant": "Bad Tenant"}, "tenant"),
        ({"broker": {"url": "mqtt://nohost"}}, "broker.url"),
        ({"broker": {"url": "mqtt://h:1", "password": "a", "password_file": "b"}}, "broker"),
        ({"broker": {"url": "mqtt://h:1", "password_file": "missing.secret"}},
         "broker.password_file: no such file"),
        ({"broker": {"url": "mqtt://h:1", "tls": {"cert": "c.pem"}}}, "broker.tls"),
        ({"heartbeat_s": 0}, "heartbeat_s"),
        ({"outbox": {"max_events": 1}}, "outbox.max_events"),
        ({"spaces": ["lot/A-001"]}, "not in the gateway's spaces"),
        ({"devices": []}, "devices"),
        ({"devices": [{"id": "x", "kind": "serial"}]}, "devices.0"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, change: dict[str, Any],
                                          message: str) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(base(**change)))
    with pytest.raises(GatewayConfigError) as err:
        load_gateway_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_a_space_bound_to_two_devices_is_refused(tmp_path: Path) -> None:
    devices = [{"id": "a", "kind": "simulated", "spaces": ["lot/A-001"]},
               {"id": "b", "kind": "simulated", "spaces": ["lot/A-001"]}]
    with pytest.raises(GatewayConfigError, match="bound to devices a and b"):
        parse_gateway_config(base(devices=devices), tmp_path)


def test_modbus_addresses_must_differ(tmp_path: Path) -> None:
    devices = [{"id": "bus", "kind": "modbus", "host": "h", "bays": [{"lot/A": 1, "lot/B": 1}]}]
    with pytest.raises(GatewayConfigError, match="share an address"):
        parse_gateway_config(base(devices=devices), tmp_path)
