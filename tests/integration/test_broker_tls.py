"""TLS and mutual TLS on the broker ``parkbazaar broker config`` writes, with the
certificates made by the ``openssl`` lines of docs/deploy.md (repeated here).

Server TLS: gateways and ingest log in with passwords over TLS; a client that
trusts another CA is refused. Mutual TLS: the certificate's CN is the username
(``use_identity_as_username``), so a gateway certificate for ``t1/gw1`` speaks
only on t1/gw1's topics, whatever username the client sends; no certificate, no
connection. Ingest there uses the plain local listener with its account.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from dashboard_api.broker import Listener
from dashboard_api.broker_sync import SyncStats, sync_once
from dashboard_api.registry import revoke_credentials
from gateway.node import GatewayNode
from gateway.outbox import EventDraft
from gateway.publisher import TlsOptions
from occupancy.config import MqttUrl
from occupancy.ids import SpaceRef
from occupancy.model import Source, SpaceState
from occupancy.topics import Channel, topic
from stack.embedded import Mosquitto, free_port, mosquitto_binary
from tests.support.broker import OTHER_TENANT, Credentials, issue_all, plain, seed_two_tenants, start_broker
from tests.support.database import count
from tests.support.ingest import running_ingest, settings_for
from tests.support.mqtt import Probe, refused
from tests.support.pki import Pki, context
from tests.support.registry import GW, SITE, TENANT, batches, make_events
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto


@dataclass
class TlsBroker:
    broker: Mosquitto
    tls_port: int
    local_port: int | None
    creds: Credentials
    dsn: str
    prefix: str


StartBroker = Callable[[bool], Awaitable[TlsBroker]]


@pytest.fixture
async def tls_broker(database: str, topic_prefix: str, tmp_path: Path,
                     pki: Pki) -> AsyncIterator[StartBroker]:
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is not installed (apt-get install mosquitto)")
    await seed_two_tenants(database)
    creds = await issue_all(database)
    started: list[Mosquitto] = []

    async def start(mutual: bool) -> TlsBroker:
        tls = Listener("127.0.0.1", free_port(), *pki.broker, pki.ca, require_certificate=mutual)
        local = plain() if mutual else None
        listeners = [tls] + ([local] if local else [])
        broker = await start_broker(database, tmp_path / f"broker{len(started)}", topic_prefix,
                                    listeners, started)
        return TlsBroker(broker, tls.port, local.port if local else None, creds, database, topic_prefix)

    try:
        yield start
    finally:
        for m in started:
            m.stop(kill=True)


def drafts(n: int) -> list[EventDraft]:
    now = datetime.now(UTC)
    return [EventDraft(SpaceRef.parse(f"{SITE}/S-{i % 50 + 1:03d}"), SpaceState.OCCUPIED, now,
                       Source.SIMULATOR) for i in range(n)]


async def run_gateway(url: MqttUrl, tls: TlsOptions, prefix: str, outbox: Path, n: int) -> int:
    node = GatewayNode(TENANT, GW, outbox, url, prefix, client_id=f"gw-{outbox.stem}",
                       reconnect_max_s=1, tls=tls)
    await asyncio.to_thread(node.start)
    try:
        assert await asyncio.to_thread(node.wait_connected, 10)
        await asyncio.to_thread(node.observe_many, drafts(n))
        assert await asyncio.to_thread(node.flush, 15)
    finally:
        await asyncio.to_thread(node.stop)
    return node.stats().acked


async def _stored(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM occupancy_events") >= n


async def test_tls_with_passwords_stores_every_event_and_a_client_of_another_ca_is_refused(
        tls_broker: StartBroker, pki: Pki, db: asyncpg.Connection, tmp_path: Path) -> None:
    b = await tls_broker(False)
    ingest_url = f"mqtts://ingest-1:{b.creds.accounts['ingest-1']}@127.0.0.1:{b.tls_port}"
    gw_url = MqttUrl("127.0.0.1", b.tls_port, f"{TENANT}/{GW}", b.creds.gateways[(TENANT, GW)], tls=True)
    async with running_ingest(settings_for(b.dsn, ingest_url, b.prefix, tls_ca=pki.ca)):
        acked = await run_gateway(gw_url, TlsOptions(ca_file=pki.ca), b.prefix, tmp_path / "gw.sqlite", 40)
        await wait_until(lambda: _stored(db, 40), 15)
    assert acked == 40
    # the right password over a connection that does not trust the broker's CA: no handshake
    answer = refused(b.tls_port, f"{TENANT}/{GW}", b.creds.gateways[(TENANT, GW)], context(pki.other_ca))
    assert "certificate verify failed" in answer
    assert refused(b.tls_port, None, tls=context(pki.ca)) == "Not authorized"
    assert refused(b.tls_port, f"{TENANT}/{GW}", b.creds.gateways[(TENANT, GW)], context(pki.ca)) == "Success"


async def test_mutual_tls_makes_the_certificate_cn_the_username(
        tls_broker: StartBroker, pki: Pki, db: asyncpg.Connection, tmp_path: Path) -> None:
    b = await tls_broker(True)
    assert b.local_port is not None
    ingest_url = f"mqtt://ingest-1:{b.creds.accounts['ingest-1']}@127.0.0.1:{b.local_port}"
    gw_url = MqttUrl("127.0.0.1", b.tls_port, None, None, tls=True)  # no password: the certificate
    tls = TlsOptions(ca_file=pki.ca, cert_file=pki.gateway[0], key_file=pki.gateway[1])
    async with running_ingest(settings_for(b.dsn, ingest_url, b.prefix)):
        acked = await run_gateway(gw_url, tls, b.prefix, tmp_path / "gw.sqlite", 30)
        await wait_until(lambda: _stored(db, 30), 15)
        # claiming to be t2/gw1 changes nothing: the broker takes the name from the certificate
        probe = Probe(b.tls_port, f"{OTHER_TENANT}/{GW}", tls=context(pki.ca, pki.gateway)).connected()
        try:
            other = topic(OTHER_TENANT, GW, Channel.EVENTS, b.prefix)
            assert probe.publish(other, batches(make_events(2), 2)[0]) == "Not authorized"
            own = topic(TENANT, GW, Channel.EVENTS, b.prefix)
            assert probe.publish(own, batches(make_events(2, start_seq=100), 2)[0]) == "Success"
            await wait_until(lambda: _stored(db, 32), 15)
            # retired credentials: the certificate still opens TLS, but its ACL block is gone
            await revoke_credentials(db, "test", TENANT, GW)
            assert b.broker.proc is not None
            pid = b.broker.proc.pid
            await sync_once(db, b.broker.data_dir, b.prefix, None, lambda: pid, SyncStats())
            # the signal is handled asynchronously: publish until the broker says no (bounded)
            late = batches(make_events(2, start_seq=200), 2)[0]
            probe.wait(lambda: probe.publish(own, late) == "Not authorized", 5)
            # Mosquitto 2.0.11 keeps a certificate-named client connected over a reload
            assert probe.connacks == ["Success"] and not probe.disconnects
        finally:
            probe.close()
    assert acked == 30
    assert await count(db, "SELECT count(*) FROM dead_letters") == 0
    # no client certificate, or one the broker's CA did not sign: no connection at all
    assert refused(b.tls_port, f"{TENANT}/{GW}", b.creds.gateways[(TENANT, GW)], context(pki.ca)) != "Success"
    assert "certificate verify failed" in refused(b.tls_port, None, tls=context(pki.other_ca, pki.gateway))
