"""Only a gateway's own credentials let it speak, and only on its own topics: a real
mosquitto run from the files ``parkbazaar broker config`` writes from the registry.

Two tenants have a gateway called ``gw1``; t1 also has ``gw2`` (its neighbour).
Ingest logs in with its service account. Every refusal is checked against a
positive marker that went through after it, never after a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from dashboard_api import registry
from dashboard_api.broker_registry import retire_account
from dashboard_api.broker_sync import SyncStats, run_sync
from gateway.node import GatewayNode
from gateway.outbox import EventDraft
from occupancy.config import MqttUrl
from occupancy.ids import SpaceRef
from occupancy.model import Source, SpaceState
from occupancy.topics import Channel, topic
from occupancy.wire import Status, encode_status
from stack.embedded import Mosquitto, mosquitto_binary
from tests.support.broker import OTHER_TENANT, Credentials, issue_all, plain, seed_two_tenants, start_broker
from tests.support.database import count
from tests.support.ingest import running_ingest, settings_for
from tests.support.mqtt import Probe, refused
from tests.support.registry import GW, GW_OTHER, SITE, TENANT, batches, make_events
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Secured:
    broker: Mosquitto
    creds: Credentials
    dsn: str
    prefix: str

    @property
    def port(self) -> int:
        return self.broker.port

    def secret(self, tenant: str = TENANT, gateway: str = GW) -> str:
        return self.creds.gateways[(tenant, gateway)]

    def ingest_url(self) -> str:
        return f"mqtt://ingest-1:{self.creds.accounts['ingest-1']}@127.0.0.1:{self.port}"

    def topic(self, channel: Channel, tenant: str = TENANT, gateway: str = GW) -> str:
        return topic(tenant, gateway, channel, self.prefix)


@pytest.fixture
async def secured(database: str, topic_prefix: str, tmp_path: Path) -> AsyncIterator[Secured]:
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is not installed (apt-get install mosquitto)")
    await seed_two_tenants(database)
    creds = await issue_all(database)
    started: list[Mosquitto] = []
    try:
        broker = await start_broker(database, tmp_path / "broker", topic_prefix, [plain()], started)
        yield Secured(broker, creds, database, topic_prefix)
    finally:
        for m in started:
            m.stop(kill=True)


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    made: list[Probe] = []
    yield made
    for p in made:
        p.close()


def _probe(made: list[Probe], port: int, user: str | None, secret: str | None = None) -> Probe:
    made.append(Probe(port, user, secret))
    return made[-1]


async def _stored(db: asyncpg.Connection, tenant: str = TENANT, gateway: str = GW) -> int:
    return await count(db, "SELECT count(*) FROM occupancy_events e JOIN gateways g ON g.id = e.gateway_id "
                           "JOIN tenants t ON t.id = g.tenant_id WHERE t.slug = $1 AND g.slug = $2",
                       tenant, gateway)


async def test_a_gateway_publishes_on_its_own_topics_and_ingest_with_its_account_stores_everything(
        secured: Secured, db: asyncpg.Connection, tmp_path: Path) -> None:
    url = MqttUrl("127.0.0.1", secured.port, f"{TENANT}/{GW}", secured.secret())
    node = GatewayNode(TENANT, GW, tmp_path / "gw.sqlite", url, secured.prefix,
                       client_id="gw-own-topics", reconnect_max_s=1)
    now = datetime.now(UTC)
    drafts = [EventDraft(SpaceRef.parse(f"{SITE}/S-{i % 50 + 1:03d}"),
                         SpaceState.OCCUPIED if i % 2 else SpaceState.FREE, now, Source.SIMULATOR)
              for i in range(200)]
    async with running_ingest(settings_for(secured.dsn, secured.ingest_url(), secured.prefix)):
        await asyncio.to_thread(node.start)
        try:
            assert await asyncio.to_thread(node.wait_connected, 10)
            sent = await asyncio.to_thread(node.observe_many, drafts)
            assert await asyncio.to_thread(node.flush, 15)
            await wait_until(lambda: _is_online(db), 15)
            await wait_until(lambda: _has(db, len(sent)), 15)
        finally:
            await asyncio.to_thread(node.stop)
    assert node.stats().acked == len(sent) == 200
    seqs = [r["seq"] for r in await db.fetch("SELECT seq FROM occupancy_events ORDER BY seq")]
    assert seqs == [e.seq for e in sent]
    assert await count(db, "SELECT count(*) FROM dead_letters") == 0


async def _is_online(db: asyncpg.Connection) -> bool:
    return bool(await db.fetchval("SELECT online FROM gateways g JOIN tenants t ON t.id = g.tenant_id "
                                  "WHERE t.slug = $1 AND g.slug = $2", TENANT, GW))


async def _has(db: asyncpg.Connection, n: int) -> bool:
    return await _stored(db) >= n


async def test_the_same_credentials_cannot_speak_for_another_tenant_a_neighbour_or_read_everything(
        secured: Secured, db: asyncpg.Connection, probes: list[Probe]) -> None:
    gw = _probe(probes, secured.port, f"{TENANT}/{GW}", secured.secret()).connected()
    gw.subscribe("#")  # Mosquitto grants it, then delivers only what the ACL lets gw1 read
    ops = _probe(probes, secured.port, "ops-1", secured.creds.accounts["ops-1"]).connected()
    events = batches(make_events(5), 5)[0]
    online = encode_status(Status(True, 9, datetime.now(UTC)))
    async with running_ingest(settings_for(secured.dsn, secured.ingest_url(), secured.prefix)):
        # the same gateway id under another tenant; the neighbour's retained status; a command
        assert gw.publish(secured.topic(Channel.EVENTS, OTHER_TENANT), events) == "Not authorized"
        assert gw.publish(secured.topic(Channel.STATUS, TENANT, GW_OTHER), online,
                          retain=True) == "Not authorized"
        assert gw.publish(secured.topic(Channel.CMD), b'{"v":1}', retain=True) == "Not authorized"
        assert gw.publish(f"{secured.prefix}/{TENANT}/{GW}/other", b"x") == "Not authorized"
        # operators may push commands; gw1 receives its own only, and none of the events
        assert ops.publish(secured.topic(Channel.CMD, TENANT, GW_OTHER), b'{"to":"gw2"}') != "Not authorized"
        assert ops.publish(secured.topic(Channel.CMD), b'{"to":"gw1"}') != "Not authorized"
        assert gw.publish(secured.topic(Channel.EVENTS), events) == "Success"  # the marker
        gw.wait(lambda: bool(gw.messages))
        await wait_until(lambda: _has(db, 5), 15)
    assert gw.messages == [(secured.topic(Channel.CMD), b'{"to":"gw1"}')]
    assert await _stored(db, OTHER_TENANT, GW) == 0
    assert await count(db, "SELECT count(*) FROM dead_letters") == 0
    assert await db.fetchval("SELECT status_at FROM gateways WHERE slug = $1", GW_OTHER) is None


def test_anonymous_wrong_secret_and_bare_gateway_id_are_refused(secured: Secured) -> None:
    user, secret = f"{TENANT}/{GW}", secured.secret()
    assert refused(secured.port, None) == "Not authorized"
    assert refused(secured.port, user, secret[:-1] + ("A" if secret[-1] != "A" else "B")) == "Not authorized"
    assert refused(secured.port, GW, secret) == "Not authorized"  # the old ACL's bare-id username
    assert refused(secured.port, f"{OTHER_TENANT}/{GW}", secret) == "Not authorized"
    assert refused(secured.port, "ingest-1", secret) == "Not authorized"
    assert refused(secured.port, user, secret) == "Success"  # the positive control


def _cli(dsn: str, *args: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKBAZAAR_")}
    done = subprocess.run([sys.executable, "-m", "parkbazaar", *args], capture_output=True, text=True,
                          env={**env, "PARKBAZAAR_DATABASE_URL": dsn}, cwd=REPO, timeout=60, check=True)
    return json.loads(done.stdout) if done.stdout.strip() else {}


async def _cut_off(probe: Probe, since: float, timeout: float = 5.0) -> float:
    """Seconds from ``since`` until the broker dropped ``probe``'s connection."""
    await asyncio.to_thread(probe.wait, lambda: bool(probe.disconnects), timeout)
    return probe.disconnects[0] - since


async def test_rotation_and_retirement_cut_off_old_credentials_within_seconds_without_a_restart(
        secured: Secured, db: asyncpg.Connection, probes: list[Probe]) -> None:
    assert secured.broker.proc is not None
    pid = secured.broker.proc.pid
    stop, ready, stats = asyncio.Event(), asyncio.Event(), SyncStats()
    sync = asyncio.create_task(run_sync(secured.dsn, secured.broker.data_dir, secured.prefix, owner=None,
                                        pid=lambda: pid, stop=stop, ready=ready, stats=stats))
    try:
        await asyncio.wait_for(ready.wait(), 15)
        old_secret = secured.secret()
        old = _probe(probes, secured.port, f"{TENANT}/{GW}", old_secret).connected()
        ops = _probe(probes, secured.port, "ops-1", secured.creds.accounts["ops-1"]).connected()
        # rotate through the command line; the open connection with the old secret is dropped
        new_secret = (await asyncio.to_thread(_cli, secured.dsn, "broker", "gateway", "rotate",
                                              f"{TENANT}/{GW}"))["secret"]
        rotated_at = time.monotonic()
        cut = await _cut_off(old, rotated_at)
        print(f"rotation: old connection dropped {cut:.2f}s after the command returned")
        assert cut < 5
        assert refused(secured.port, f"{TENANT}/{GW}", old_secret) == "Not authorized"
        new = _probe(probes, secured.port, f"{TENANT}/{GW}", new_secret).connected()
        assert new.publish(secured.topic(Channel.HEALTH), b'{"v":1}') != "Not authorized"
        # retire the credentials (what DELETE …/gateways/gw1/credentials does) and an account
        await registry.revoke_credentials(db, "test", TENANT, GW)
        await retire_account(db, "ops-1", actor="test")
        retired_at = time.monotonic()
        cut = await _cut_off(new, retired_at)
        print(f"retirement: open connection dropped {cut:.2f}s after the commit")
        assert cut < 5
        assert await _cut_off(ops, retired_at) < 5
        assert refused(secured.port, f"{TENANT}/{GW}", new_secret) == "Not authorized"
        assert refused(secured.port, "ops-1", secured.creds.accounts["ops-1"]) == "Not authorized"
        assert refused(secured.port, f"{TENANT}/{GW_OTHER}", secured.secret(TENANT, GW_OTHER)) == "Success"
    finally:
        stop.set()
        await asyncio.wait_for(sync, 15)
    assert secured.broker.proc is not None and secured.broker.proc.pid == pid
    assert secured.broker.proc.poll() is None, "the broker was never restarted"
    assert stats.reloads >= 2 and stats.retries == 0


async def test_ingest_still_refuses_what_the_acl_lets_through_but_the_registry_does_not(
        secured: Secured, db: asyncpg.Connection, probes: list[Probe]) -> None:
    """Defence in depth: a gateway on its own topic naming another gateway in the payload,
    or reporting a space it is not bound to, is a dead letter, not an event."""
    gw1 = _probe(probes, secured.port, f"{TENANT}/{GW}", secured.secret()).connected()
    gw2 = _probe(probes, secured.port, f"{TENANT}/{GW_OTHER}", secured.secret(TENANT, GW_OTHER)).connected()
    own, neighbours = secured.topic(Channel.EVENTS), secured.topic(Channel.EVENTS, TENANT, GW_OTHER)
    async with running_ingest(settings_for(secured.dsn, secured.ingest_url(), secured.prefix)):
        assert gw1.publish(own, batches(make_events(3), 3, GW_OTHER)[0]) == "Success"
        assert gw2.publish(neighbours, batches(make_events(3, start_seq=10), 3, GW_OTHER)[0]) == "Success"
        assert gw1.publish(own, batches(make_events(2, start_seq=20), 2)[0]) == "Success"  # the marker
        await wait_until(lambda: _dead(db, 2), 15)
        await wait_until(lambda: _has(db, 2), 15)
    reasons = sorted(r["reason"] for r in await db.fetch("SELECT reason FROM dead_letters"))
    assert reasons == ["gateway_mismatch", "space_not_bound"]
    assert await count(db, "SELECT count(*) FROM occupancy_events") == 2


async def _dead(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM dead_letters") >= n
