"""The gateway never loses an observation: broker outage, SIGKILL, full outbox.

Real Mosquitto (started by the test), real ingest and PostgreSQL; the gateway
is the real service (in this loop, or as a ``parkbazaar gateway run`` process).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from gateway.outbox import Outbox
from gateway.service import GatewayService
from occupancy.health import decode_health
from stack.embedded import Mosquitto
from tests.support.gateways import (
    config_dict,
    first_arrivals,
    gateway_process,
    make_config,
    running_gateway,
    simulated,
    stored_kinds,
    stored_seqs,
    terminate,
    write_config,
)
from tests.support.ingest import running_ingest, settings_for
from tests.support.mqtt import Subscriber
from tests.support.registry import seed_registry
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto

# Short outages in the default run; the long one (`slow`) is 30 s, thirty times the reconnect
# backoff's cap here (1 s); PARKBAZAAR_TEST_LONG_OUTAGE_S=60 runs the 60 s an earlier issue asked for.
OUTAGE_S = float(os.environ.get("PARKBAZAAR_TEST_OUTAGE_S", "5"))
LONG_OUTAGE_S = float(os.environ.get("PARKBAZAAR_TEST_LONG_OUTAGE_S", "30"))
# ingest's two subscriptions: MQTT 5's shared ``$share/ingest/…`` (the default), which
# Mosquitto 2.0 does not restore after a restart (the gateway's MQTT 5 PUBACK "no matching
# subscribers" keeps those events in its outbox until ingest resubscribes), and
# MQTT 3.1.1's plain persistent one, which it restores. The second gets a shorter outage.
# Only the plain one also has the test's subscriber watching the order of arrival: any
# other subscriber of the events matches them, the PUBACK says "delivered", and what the
# broker took before ingest resubscribed is lost to ingest (measured: ~1,000 of 2,000).
PROTOCOLS = [pytest.param(5, OUTAGE_S, id="mqtt5-shared"), pytest.param(4, 3.0, id="mqtt311-plain")]


async def _outage_run(outage_s: float, database: str, db: asyncpg.Connection, topic_prefix: str,
                      tmp_path: Path, broker: Mosquitto, protocol: int) -> None:
    await seed_registry(database)
    sub = Subscriber(broker.url, topic_prefix) if protocol == 4 else None
    config = make_config(config_dict(broker.url, topic_prefix, tmp_path / "state",
                                     [simulated(50, poll_s=0.05, p=0.1)], heartbeat_s=1.0), tmp_path)
    try:
        # ingest reconnects as fast as the gateway (1 s cap): the wait after the outage is the chain's
        async with running_ingest(settings_for(database, broker.url, topic_prefix, protocol=protocol,
                                               reconnect_initial_s=0.2, reconnect_max_s=1.0)):
            async with running_gateway(config) as (service, result):
                await wait_until(lambda: _count(db, 100), 15)
                broker.stop()  # SIGTERM: the broker goes away with the gateway mid-stream
                before = service.stats()
                await asyncio.sleep(outage_s)  # the outage under test
                during = service.stats()
                assert during.changes + during.heartbeats > before.changes + before.heartbeats
                assert service.node.stats().depth > 0
                broker.start()
                await wait_until(lambda: _connected(service), 30)
                back = _produced(service)  # keep producing after the return, and deliver it
                await wait_until(lambda: _async(_produced(service) >= back + 100), 30)
                await wait_until(lambda: _count(db, back + 50), 30)
            stats = result[0]
            assert stats.node.depth == 0  # flushed at stop
            with Outbox(config.outbox_path()) as box:
                last = box.last_seq
            assert last == stats.changes + stats.heartbeats
            await wait_until(lambda: _count(db, last), 60)
        assert await stored_seqs(db) == list(range(1, last + 1))  # each once, none missing
        if sub is not None:
            await asyncio.to_thread(sub.wait, lambda: set(sub.seqs()) >= set(range(1, last + 1)), 30)
            assert first_arrivals(sub.seqs()) == list(range(1, last + 1))  # in seq order
    finally:
        if sub is not None:
            sub.close()


async def _count(db: asyncpg.Connection, n: int) -> bool:
    return int(await db.fetchval("SELECT count(*) FROM occupancy_events")) >= n


async def _connected(service: GatewayService) -> bool:
    return service.node.stats().connected


def _produced(service: GatewayService) -> int:
    stats = service.stats()
    return stats.changes + stats.heartbeats


async def _async(value: bool) -> bool:
    return value


@pytest.mark.parametrize(("protocol", "outage_s"), PROTOCOLS)
async def test_broker_outage_every_event_arrives_once(
        database: str, db: asyncpg.Connection, topic_prefix: str, tmp_path: Path,
        mosquitto_factory: Callable[..., Mosquitto], protocol: int, outage_s: float) -> None:
    """Each event stored once, none missing; in seq order where a watcher may subscribe."""
    await _outage_run(outage_s, database, db, topic_prefix, tmp_path, mosquitto_factory(), protocol)


@pytest.mark.slow
async def test_broker_stopped_for_long(
        database: str, db: asyncpg.Connection, topic_prefix: str, tmp_path: Path,
        mosquitto_factory: Callable[..., Mosquitto]) -> None:
    await _outage_run(LONG_OUTAGE_S, database, db, topic_prefix, tmp_path, mosquitto_factory(), protocol=4)


async def test_sigkill_mid_publish_then_restart_resends_and_seq_continues(
        database: str, db: asyncpg.Connection, topic_prefix: str, tmp_path: Path,
        mosquitto_factory: Callable[..., Mosquitto]) -> None:
    await seed_registry(database)
    broker = mosquitto_factory()
    assert broker.proc is not None
    data = config_dict(broker.url, topic_prefix, tmp_path / "state",
                       [simulated(50, poll_s=0.05, p=0.2)])
    path = write_config(data, tmp_path / "gw.yaml")
    outbox = make_config(data, tmp_path).outbox_path()
    async with running_ingest(settings_for(database, broker.url, topic_prefix)):
        proc = gateway_process(path)
        try:
            await wait_until(lambda: _count(db, 200), 20)
            os.kill(broker.proc.pid, signal.SIGSTOP)  # PUBACKs stop: what is sent stays pending
            await asyncio.sleep(0.7)
            proc.kill()  # SIGKILL mid-publish
            proc.wait(10)
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
            proc.kill()
        with Outbox(outbox) as box:
            unacked = [e.seq for e in box.pending(100_000)]
            killed_at = box.last_seq
        assert unacked and unacked[-1] == killed_at
        proc = gateway_process(path)
        try:
            await wait_until(lambda: _count(db, killed_at + 100), 30)
        finally:
            out = terminate(proc)
        assert proc.returncode == 0, out
        with Outbox(outbox) as box:
            assert box.depth() == 0  # SIGTERM flushed everything
            last = box.last_seq
        assert last > killed_at + 100
        await wait_until(lambda: _count(db, last), 30)
    assert await stored_seqs(db) == list(range(1, last + 1))


async def test_full_outbox_keeps_changes_drops_heartbeats_and_says_so_in_health(
        database: str, db: asyncpg.Connection, topic_prefix: str, tmp_path: Path,
        mosquitto_factory: Callable[..., Mosquitto]) -> None:
    await seed_registry(database)
    broker = mosquitto_factory()
    config = make_config(config_dict(
        broker.url, topic_prefix, tmp_path / "state", [simulated(10, poll_s=0.05, p=0.05)],
        heartbeat_s=0.1, outbox={"max_events": 200}), tmp_path)
    async with running_ingest(settings_for(database, broker.url, topic_prefix, protocol=4)):
        broker.stop()  # a long outage, from before the gateway starts
        async with running_gateway(config) as (service, result):
            await wait_until(lambda: _dropped(service, 50), 20)  # full, and it stays full
            assert service.stats().changes < 200  # the test's premise: the changes alone fit
            assert service.node.stats().depth == 200
            broker.start()
            sub = Subscriber(broker.url, topic_prefix)
            try:
                await asyncio.to_thread(sub.wait, lambda: _health_dropped(sub) > 0, 20)
            finally:
                sub.close()
            assert await asyncio.to_thread(service.node.flush, 20)
        stats = result[0]
        assert stats.node.dropped_changes == 0
        assert stats.node.dropped_heartbeats > 0
        await wait_until(lambda: _count(db, stats.changes + stats.heartbeats
                                        - stats.node.dropped_heartbeats), 40)
    kinds = await stored_kinds(db)
    assert kinds["change"] == stats.changes  # every change kept
    # a heartbeat dropped while already on the wire may still arrive: at least the kept ones
    assert stats.heartbeats - stats.node.dropped_heartbeats <= kinds["heartbeat"] < stats.heartbeats
    seqs = await stored_seqs(db)
    assert len(seqs) == len(set(seqs))


async def _dropped(service: GatewayService, at_least: int) -> bool:
    return service.node.stats().dropped_heartbeats >= at_least


def _health_dropped(sub: Subscriber) -> int:
    healths = [decode_health(p) for t, p, _ in sub.received() if t.endswith("/health")]
    return max((h.outbox.dropped_heartbeats for h in healths), default=0)


