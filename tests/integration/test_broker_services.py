"""The services' listener (``broker config --services``) on a real Mosquitto run from the
generated files, TLS as the deployments have it: ingest workers of ONE service account,
each with its own client id, stay connected side by side and share the events (each
stores some, every event once), while on the gateways' listener a gateway naming their
client ids takes over nothing, and two clients of one account kick each other off (why
the workers cannot live there)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from dashboard_api.broker import TlsFiles, layout_for
from stack.embedded import Mosquitto, free_port, mosquitto_binary, wait_port
from tests.support.broker import (
    OTHER_TENANT,
    Credentials,
    current_user,
    issue_all,
    seed_two_tenants,
    start_broker,
)
from tests.support.database import count
from tests.support.ingest import IngestProcess, reap, totals_in
from tests.support.mqtt import Probe
from tests.support.pki import Pki, context
from tests.support.registry import GW, GW_OTHER, TENANT, batches, events_topic, make_events
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto
EVENTS = 1000


@dataclass
class Broker:
    gateways_port: int
    services_port: int
    creds: Credentials
    pki: Pki

    def probe(self, port: int, user: str, secret: str, client_id: str | None = None) -> Probe:
        return Probe(port, user, secret, tls=context(self.pki.ca), client_id=client_id).connected()

    def gateway(self, tenant: str, gateway: str, client_id: str | None = None) -> Probe:
        return self.probe(self.gateways_port, f"{tenant}/{gateway}", self.creds.gateways[(tenant, gateway)],
                          client_id)


@pytest.fixture
async def broker(database: str, topic_prefix: str, tmp_path: Path, pki: Pki) -> AsyncIterator[Broker]:
    """``broker config --listen 127.0.0.1:A --services 127.0.0.1:B --tls-cert … --tls-key …
    --tls-ca …`` from the registry, and mosquitto on it."""
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is not installed (apt-get install mosquitto)")
    await seed_two_tenants(database)
    creds = await issue_all(database)
    gateways_port, services_port = free_port(), free_port()
    layout = layout_for(tmp_path / "broker", current_user(), listen=f"127.0.0.1:{gateways_port}",
                        services=f"127.0.0.1:{services_port}", tls=TlsFiles(*pki.broker, pki.ca))
    started: list[Mosquitto] = []
    try:
        await start_broker(database, layout.out, topic_prefix, layout.listeners, started)
        wait_port("127.0.0.1", services_port)
        yield Broker(gateways_port, services_port, creds, pki)
    finally:
        for m in started:
            m.stop(kill=True)


@pytest.fixture
def procs() -> Iterator[None]:
    yield
    reap()


async def test_workers_of_one_account_share_the_events_and_a_gateway_takes_over_none(
        broker: Broker, database: str, db: asyncpg.Connection, topic_prefix: str, procs: None) -> None:
    url = f"mqtts://ingest-1:{broker.creds.accounts['ingest-1']}@127.0.0.1:{broker.services_port}"
    ids = [f"{topic_prefix[:11]}-ingest-{i}" for i in (1, 2)]
    workers = [IngestProcess(database, url, topic_prefix, cid, tls_ca=str(broker.pki.ca)) for cid in ids]
    for w in workers:
        await asyncio.to_thread(w.wait_ready)
    # gateways connecting on their listener with the workers' client ids: the broker makes
    # each one's id its username, so neither worker's session is touched
    thieves = [await asyncio.to_thread(broker.gateway, *who, cid)
               for who, cid in zip([(TENANT, GW_OTHER), (OTHER_TENANT, GW)], ids, strict=True)]
    gateway = await asyncio.to_thread(broker.gateway, TENANT, GW)
    try:
        payloads = batches(make_events(EVENTS), 5)
        answers = [await asyncio.to_thread(gateway.publish, events_topic(topic_prefix), p) for p in payloads]
        assert set(answers) == {"Success"}
        await wait_until(lambda: _stored(db, EVENTS), 60)
        for thief in thieves:
            assert thief.connacks == ["Success"] and not thief.disconnects
    finally:
        for client in (gateway, *thieves):
            client.close()
    logs = [w.stop() for w in workers]
    for log in logs:
        assert " lost: " not in log and log.count("(connection 1)") == 1 and "(connection 2)" not in log, \
            log[-3000:]
    stored = [totals_in(log)["stored"] for log in logs]
    assert all(n > 0 for n in stored), f"both workers must take a share: {stored}"
    assert sum(stored) == EVENTS
    assert await count(db, "SELECT count(*) FROM occupancy_events") == EVENTS
    assert await count(db, "SELECT count(DISTINCT (gateway_id, seq)) FROM occupancy_events") == EVENTS


async def _stored(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM occupancy_events") >= n


def test_on_the_gateways_listener_two_clients_of_one_account_kick_each_other_off(broker: Broker) -> None:
    """What the workers would suffer there: both ids become the username ``ingest-1``."""
    secret = broker.creds.accounts["ingest-1"]
    first = broker.probe(broker.gateways_port, "ingest-1", secret, "worker-1")
    second = None
    try:
        second = broker.probe(broker.gateways_port, "ingest-1", secret, "worker-2")
        first.wait(lambda: bool(first.disconnects))
    finally:
        for client in (first, second):
            if client is not None:
                client.close()
    # the same two on the services' listener: both stay (the second connected after the first)
    first = broker.probe(broker.services_port, "ingest-1", secret, "worker-1")
    second = broker.probe(broker.services_port, "ingest-1", secret, "worker-2")
    try:
        marker = events_topic("probe")
        assert first.subscribe(marker) == ["Granted QoS 1"] and second.subscribe(marker) == ["Granted QoS 1"]
        assert not first.disconnects and not second.disconnects
    finally:
        first.close()
        second.close()
