"""The broker's files rendered from identities (pure), and the checks of its options."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dashboard_api.auth import hash_secret, new_secret, verify_secret
from dashboard_api.broker import (
    BrokerLayout,
    Identity,
    Listener,
    TlsFiles,
    acl_file,
    layout_for,
    mosquitto_conf,
    parse_listen,
    password_file,
    render,
)
from parkbazaar.cli import main

GW = Identity.of_gateway("shiraz", "gw-1", "$7$101$c2FsdA==$aGFzaA==")
TWIN = Identity.of_gateway("tabriz", "gw-1", "$7$101$c2FsdA==$b3RoZXI=")
INGEST = Identity("ingest-1", "ingest", "$7$101$c2FsdA==$aW5nZXN0")
API = Identity("api-1", "api", "$7$101$c2FsdA==$YXBp")


def _blocks(acl: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    user = None
    for line in acl.splitlines():
        if line.startswith("user "):
            user = line[5:]
            out[user] = []
        elif line.startswith("topic ") and user is not None:
            out[user].append(line)
    return out


def test_each_gateway_gets_its_own_topics_spelled_out_and_nothing_else() -> None:
    blocks = _blocks(acl_file([INGEST, TWIN, GW, API], "parkbazaar/v1"))
    assert blocks["shiraz/gw-1"] == [
        "topic write parkbazaar/v1/shiraz/gw-1/events",
        "topic write parkbazaar/v1/shiraz/gw-1/status",
        "topic write parkbazaar/v1/shiraz/gw-1/health",
        "topic read parkbazaar/v1/shiraz/gw-1/cmd",
    ]
    assert all("tabriz" in t for t in blocks["tabriz/gw-1"])
    assert blocks["ingest-1"] == [f"topic read parkbazaar/v1/+/+/{c}" for c in ("events", "status", "health")]
    assert blocks["api-1"] == []  # may connect, may do nothing


def test_the_acl_has_no_patterns_and_the_output_does_not_depend_on_order() -> None:
    acl = acl_file([GW, INGEST, TWIN], "t0/parkbazaar/v1")
    assert "%u" not in acl and "pattern" not in acl.replace("# ", "")
    assert acl == acl_file([TWIN, INGEST, GW], "t0/parkbazaar/v1")
    assert "topic write t0/parkbazaar/v1/tabriz/gw-1/events" in acl


def test_the_password_file_is_mosquitto_format_and_verifies_the_secret() -> None:
    secret = new_secret()
    ident = Identity.of_gateway("shiraz", "gw-1", hash_secret(secret))
    line = password_file([ident]).strip()
    user, _, stored = line.partition(":")
    assert user == "shiraz/gw-1" and stored.startswith("$7$101$")
    assert verify_secret(secret, stored) and not verify_secret(secret + "x", stored)


def test_secrets_fit_a_broker_url_as_they_are() -> None:
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{40,}", new_secret()) for _ in range(200))


def test_the_config_refuses_anonymous_and_raises_the_queue_limits(tmp_path: Path) -> None:
    layout = BrokerLayout(tmp_path, [Listener("127.0.0.1", 1883)], "mosquitto")
    conf = mosquitto_conf(layout)
    for line in ("allow_anonymous false", "max_queued_messages 1000000", "persistence true",
                 f"password_file {tmp_path}/passwd", f"acl_file {tmp_path}/acl", "user mosquitto",
                 "listener 1883 127.0.0.1", "persistent_client_expiration 7d"):
        assert line in conf.splitlines(), line
    assert "certfile" not in conf and "require_certificate" not in conf
    assert set(render([GW], "parkbazaar/v1", layout)) == {"mosquitto.conf", "passwd", "acl"}


def test_a_mutual_tls_listener_takes_the_username_from_the_certificate() -> None:
    tls = Listener("0.0.0.0", 8883, Path("/c/b.pem"), Path("/c/b.key"), Path("/c/ca.pem"), True)
    assert tls.lines() == ["listener 8883 0.0.0.0", "certfile /c/b.pem", "keyfile /c/b.key",
                           "cafile /c/ca.pem", "require_certificate true", "use_identity_as_username true"]


@pytest.mark.parametrize(("text", "expected"), [("127.0.0.1:1883", ("127.0.0.1", 1883)),
                                                ("[::1]:8883", ("::1", 8883)),
                                                ("0.0.0.0:8883", ("0.0.0.0", 8883))])
def test_listen_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["1883", "host:", ":1883", "host:0", "host:70000", "host:x"])
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


def test_the_layout_defaults_to_a_local_plain_listener_or_tls_on_8883() -> None:
    gateways = Listener("127.0.0.1", 1883, client_id_is_username=True)
    assert layout_for(Path("/tmp/x"), "me").listeners == [gateways]
    tls = layout_for(Path("/tmp/x"), "me", local="127.0.0.1:1883",
                     tls=TlsFiles(Path("b.pem"), Path("b.key")))
    assert (tls.listeners[0].host, tls.listeners[0].port, tls.listeners[0].tls) == ("0.0.0.0", 8883, True)
    assert tls.listeners[1] == Listener("127.0.0.1", 1883)


def test_the_services_listener_takes_the_brokers_certificate_and_keeps_client_ids() -> None:
    pki = Path("/c")
    tls = TlsFiles(pki / "b.pem", pki / "b.key", pki / "ca.pem", require_client_cert=True)
    layout = layout_for(Path("/tmp/x"), "me", services="0.0.0.0:8884", local="127.0.0.1:1883", tls=tls)
    gateways, services, local = layout.listeners
    assert gateways.require_certificate and gateways.client_id_is_username
    # TLS like the gateways' (it crosses a network), but passwords: no client certificate
    assert services == Listener("0.0.0.0", 8884, pki / "b.pem", pki / "b.key", pki / "ca.pem")
    assert services.lines() == ["listener 8884 0.0.0.0", "certfile /c/b.pem", "keyfile /c/b.key",
                                "cafile /c/ca.pem"]
    assert local == Listener("127.0.0.1", 1883)
    conf = mosquitto_conf(layout)
    assert conf.count("use_username_as_clientid true") == 1
    assert conf.count("require_certificate true") == 1


def test_without_a_certificate_the_services_listener_is_plain() -> None:
    layout = layout_for(Path("/tmp/x"), "me", listen="0.0.0.0:1883", services="0.0.0.0:1884")
    assert layout.listeners[1] == Listener("0.0.0.0", 1884)
    assert layout.listeners[1].lines() == ["listener 1884 0.0.0.0"]


@pytest.mark.parametrize(("options", "says"), [
    ({"tls": TlsFiles(Path("b.pem"))}, "go together"),
    ({"tls": TlsFiles(Path("b.pem"), Path("b.key"), require_client_cert=True)}, "needs"),
    ({"listen": "nowhere"}, "HOST:PORT"),
    ({"services": "0.0.0.0:"}, "HOST:PORT"),
    ({"listen": "0.0.0.0:8883", "services": "0.0.0.0:8883"}, "two listeners on port 8883"),
    ({"services": "10.0.0.5:1884", "local": "0.0.0.0:1884"}, "two listeners on port 1884")])
def test_the_layout_refuses_incomplete_tls_options(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        layout_for(Path("/tmp/x"), "me", **options)


def test_the_config_command_refuses_incomplete_tls_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "config", "--out", "/tmp/x", "--tls-cert", "b.pem"]) == 2
    assert "parkbazaar broker config: --tls-cert and --tls-key go together" in capsys.readouterr().err


def test_the_config_help_names_the_services_listener(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["broker", "config", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--services HOST:PORT" in text and "never a client certificate" in text


def test_the_shipped_example_config_is_what_the_command_writes() -> None:
    """deploy/mosquitto/mosquitto.conf = ``broker config --out /etc/parkbazaar/broker --tls-cert
    /etc/parkbazaar/pki/broker.pem --tls-key …/broker.key --tls-ca …/ca.pem --local 127.0.0.1:1883
    --user mosquitto``."""
    pki = Path("/etc/parkbazaar/pki")
    layout = BrokerLayout(Path("/etc/parkbazaar/broker"),
                          [Listener("0.0.0.0", 8883, pki / "broker.pem", pki / "broker.key", pki / "ca.pem",
                                    client_id_is_username=True),
                           Listener("127.0.0.1", 1883)], "mosquitto")
    shipped = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
    assert shipped.read_text() == mosquitto_conf(layout)
