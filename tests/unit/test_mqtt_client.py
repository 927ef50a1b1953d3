"""The one builder of MQTT clients: protocol, session, TLS as the spec says (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as paho
import pytest

from occupancy.config import MqttUrl
from occupancy.mqtt_client import ClientSpec, MqttSetupError, TlsOptions, build_client

URL = MqttUrl.parse("mqtt://u:p@127.0.0.1:1883")


def test_the_url_caps_the_protocol_and_the_caller_may_lower_it() -> None:
    assert ClientSpec(URL, "c").version == 5
    assert ClientSpec(URL, "c", protocol=4).version == 4
    assert ClientSpec(MqttUrl.parse("mqtt://127.0.0.1:1883?protocol=4"), "c").version == 4
    assert build_client(ClientSpec(URL, "c", protocol=4))._protocol == paho.MQTTv311


@pytest.mark.parametrize(("clean_start", "expiry", "clean_session"),
                         [(True, None, True), (False, 3600, False), (False, 0, True)])
def test_a_persistent_session_over_mqtt_311_is_clean_session_off(
        clean_start: bool, expiry: int | None, clean_session: bool) -> None:
    spec = ClientSpec(URL, "c", protocol=4, clean_start=clean_start, session_expiry_s=expiry)
    assert build_client(spec)._clean_session is clean_session


def test_tls_for_an_mqtts_url_or_when_the_spec_names_files() -> None:
    assert ClientSpec(URL, "c").tls_options is None
    assert ClientSpec(MqttUrl.parse("mqtts://127.0.0.1:8883"), "c").tls_options == TlsOptions()
    own = TlsOptions(ca_file=Path("ca.pem"))
    assert ClientSpec(URL, "c", tls=own).tls_options is own


def test_a_missing_tls_file_is_a_setup_error(tmp_path: Path) -> None:
    spec = ClientSpec(URL, "c", tls=TlsOptions(ca_file=tmp_path / "missing.pem"))
    with pytest.raises(MqttSetupError, match="TLS setup failed"):
        build_client(spec)


def test_a_url_may_name_every_node_of_a_clustered_broker() -> None:
    url = MqttUrl.parse("mqtt://u:p%40ss@n1:1883,10.0.0.2:1884,[::1]:1885?protocol=4")
    assert url.addresses == (("n1", 1883), ("10.0.0.2", 1884), ("::1", 1885))
    assert (url.host, url.port, url.username, url.password, url.protocol) == ("n1", 1883, "u", "p@ss", 4)
    assert ClientSpec(url, "c").where == "n1:1883,10.0.0.2:1884,::1:1885"
    assert MqttUrl.parse("mqtt://127.0.0.1:1883") == MqttUrl("127.0.0.1", 1883)  # one node: as before
    assert MqttUrl.parse("mqtt://u@h:1").password is None


@pytest.mark.parametrize("url", ["mqtt://n1:1883,", "mqtt://n1:1883,n2", "mqtt://n1:1883,n2:x",
                                 "mqtt://,n2:1883", "mqtt://u:p@"])
def test_every_node_of_a_broker_url_needs_a_host_and_a_port(url: str) -> None:
    with pytest.raises(ValueError, match="host and a port"):
        MqttUrl.parse(url)
