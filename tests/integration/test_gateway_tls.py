"""The gateway's TLS to the broker, against a real TLS Mosquitto.

The tests make a throw-away CA with the ``openssl`` command line: a server
certificate for 127.0.0.1 / localhost, a client certificate, and a second CA
that signed nothing the broker has. Each test starts its own mosquitto with a
plain listener (for the test's subscriber) and a TLS-only listener (for the
gateway, and for ingest in the mutual-TLS test: ``ingest.tls_ca|tls_cert|tls_key``),
and runs the whole gateway from a config file whose ``broker.tls`` names
copies of the files, by paths relative to the file.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from gateway.config import GatewayConfig, load_gateway_config
from gateway.outbox import Outbox
from gateway.service import GatewayService
from stack.embedded import Mosquitto, TlsListener, mosquitto_binary
from tests.support.gateways import config_dict, running_gateway, simulated, stored_seqs, write_config
from tests.support.ingest import running_ingest, settings_for
from tests.support.mqtt import Subscriber
from tests.support.registry import seed_registry
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto

NEW_KEY = [  # a new unencrypted P-256 key, for a certificate valid one day
    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"]


@dataclass(frozen=True)
class Pki:
    """The throw-away certificates and keys (PEM files)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def _make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl("req", "-x509", *NEW_KEY, "-keyout", str(key), "-out", str(cert),
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def _issue(ca: tuple[Path, Path], folder: Path, name: str, *extensions: str) -> tuple[Path, Path]:
    """A leaf certificate signed by ``ca`` (``openssl req -x509 -CA``: OpenSSL 3)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    added = [arg for ext in ("basicConstraints=critical,CA:FALSE", *extensions)
             for arg in ("-addext", ext)]
    _openssl("req", "-x509", "-CA", str(ca[0]), "-CAkey", str(ca[1]), *NEW_KEY,
             "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}", *added)
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line is not installed (apt-get install openssl)")
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True,
                             check=False).stdout.split()
    if version[:1] != ["OpenSSL"] or int(version[1].split(".")[0]) < 3:
        pytest.skip(f"openssl req -x509 -CA needs OpenSSL 3 or newer; this is {' '.join(version[:2])}")
    folder = tmp_path_factory.mktemp("pki")
    ca = _make_ca(folder, "test-ca")
    server = _issue(ca, folder, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "extendedKeyUsage=serverAuth")
    client = _issue(ca, folder, "gw1", "extendedKeyUsage=clientAuth")
    other_ca, _ = _make_ca(folder / "other", "other-ca")
    return Pki(ca[0], *server, *client, other_ca)


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[Callable[[bool], Mosquitto]]:
    """Start mosquitto with a plain and a TLS listener; every one started is killed at the end."""
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is not installed (apt-get install mosquitto)")
    started: list[Mosquitto] = []

    def start(require_certificate: bool) -> Mosquitto:
        tls = TlsListener(pki.ca, pki.server_cert, pki.server_key, require_certificate)
        started.append(Mosquitto(tmp_path / f"mosquitto{len(started)}", tls=tls).start())
        return started[-1]

    yield start
    for m in started:
        m.stop(kill=True)


def gateway_config(folder: Path, broker: Mosquitto, prefix: str,
                   tls: dict[str, Path] | None) -> GatewayConfig:
    """A config file in ``folder`` for the broker's TLS listener; ``tls`` files copied beside it."""
    assert broker.tls is not None
    data = config_dict(broker.tls.url, prefix, folder / "state",
                       [simulated(10, poll_s=0.05, p=0.3)])
    if tls is not None:
        (folder / "tls").mkdir(exist_ok=True)
        for key, source in tls.items():
            shutil.copyfile(source, folder / "tls" / f"{key}.pem")
        data["broker"]["tls"] = {key: f"tls/{key}.pem" for key in tls}
    return load_gateway_config(write_config(data, folder / "gw.yaml"))


def mutual(pki: Pki) -> dict[str, Path]:
    return {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key}


async def test_mutual_tls_delivers_every_event_to_ingest(
        database: str, db: asyncpg.Connection, topic_prefix: str, tmp_path: Path, pki: Pki,
        tls_broker: Callable[[bool], Mosquitto]) -> None:
    await seed_registry(database)
    broker = tls_broker(True)
    config = gateway_config(tmp_path, broker, topic_prefix, mutual(pki))
    assert broker.tls is not None  # ingest too speaks mutual TLS, with its own certificate
    settings = settings_for(database, broker.tls.url, topic_prefix, tls_ca=pki.ca,
                            tls_cert=pki.client_cert, tls_key=pki.client_key)
    async with running_ingest(settings):
        async with running_gateway(config) as (_, result):
            await wait_until(lambda: _stored(db, 30), 15)
        stats = result[0].node
        assert (stats.depth, stats.connects, stats.reconnect_attempts) == (0, 1, 0)
        with Outbox(config.outbox_path()) as box:
            last = box.last_seq
        await wait_until(lambda: _stored(db, last), 15)
    assert await stored_seqs(db) == list(range(1, last + 1))


@pytest.mark.parametrize("trust", ["ca_file", "system_store"])
async def test_server_tls_delivers_with_the_ca_of_the_file_or_of_the_system(
        trust: str, topic_prefix: str, tmp_path: Path, pki: Pki,
        tls_broker: Callable[[bool], Mosquitto], monkeypatch: pytest.MonkeyPatch) -> None:
    broker = tls_broker(False)
    if trust == "system_store":  # mqtts:// and no broker.tls: OpenSSL's default CA file
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    config = gateway_config(tmp_path, broker, topic_prefix,
                            {"ca": pki.ca} if trust == "ca_file" else None)
    assert config.mqtt().tls and (config.tls() is None) == (trust == "system_store")
    sub = Subscriber(broker.url, topic_prefix)
    try:
        async with running_gateway(config) as (_, result):
            await asyncio.to_thread(sub.wait, lambda: len(sub.seqs()) >= 20, 15)
        assert (result[0].node.depth, result[0].node.connects) == (0, 1)
        with Outbox(config.outbox_path()) as box:
            last = box.last_seq
        await asyncio.to_thread(sub.wait, lambda: set(sub.seqs()) >= set(range(1, last + 1)), 15)
    finally:
        sub.close()


# the gateway's TLS files; what the gateway logs; what the broker logs
REFUSALS: dict[str, tuple[Callable[[Pki], dict[str, Path]], str, str]] = {
    # the gateway does not trust the broker: its own TLS handshake fails
    "wrong_ca": (lambda pki: {**mutual(pki), "ca": pki.other_ca},
                 "certificate verify failed", "alert unknown ca"),
    # the broker does not accept the gateway: it drops the connection after the handshake
    "no_client_cert": (lambda pki: {"ca": pki.ca},
                       "TLS without a client certificate", "peer did not return a certificate"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refused_tls_says_why_keeps_every_event_and_sends_them_once_fixed(
        case: str, topic_prefix: str, tmp_path: Path, pki: Pki,
        tls_broker: Callable[[bool], Mosquitto], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.publisher")
    broker = tls_broker(True)
    tls, gateway_says, broker_says = REFUSALS[case]
    config = gateway_config(tmp_path, broker, topic_prefix, tls(pki))
    sub = Subscriber(broker.url, topic_prefix)
    try:
        async with running_gateway(config) as (service, result):
            await wait_until(lambda: _refused_twice_with_events_or_connected(service), 15)
        stats = result[0].node
        assert (stats.connects, stats.acked) == (0, 0)
        assert gateway_says in caplog.text
        assert broker_says in (broker.data_dir / "mosquitto.log").read_text()
        with Outbox(config.outbox_path()) as box:
            last = box.last_seq
            assert [e.seq for e in box.pending(100_000)] == list(range(1, last + 1))
        assert (sub.seqs(), sub.statuses()) == ([], [])  # not even a birth
        fixed = gateway_config(tmp_path, broker, topic_prefix, mutual(pki))
        async with running_gateway(fixed):
            await asyncio.to_thread(sub.wait, lambda: set(sub.seqs()) >= set(range(1, last + 1)), 15)
    finally:
        sub.close()


async def _stored(db: asyncpg.Connection, n: int) -> bool:
    return int(await db.fetchval("SELECT count(*) FROM occupancy_events")) >= n


async def _refused_twice_with_events_or_connected(service: GatewayService) -> bool:
    stats = service.node.stats()
    return stats.connects > 0 or (stats.reconnect_attempts >= 2 and stats.depth >= 10)
