"""No single point of failure in the broker: one node of three is lost under load.

Three ``nats-server`` nodes (tests/support/natscluster.py: MQTT 3.1.1, QoS 1
sessions and messages in JetStream, replicated over the nodes). A real ingest
is given the URL naming every node, starting with node 2; a gateway publishes
through node 1 (then 3, then 2). Under load one node is SIGKILLed:

- node 2, the one ingest is connected to: ingest's supervisor goes on to the
  next node and resumes its persistent session there (node 3 may refuse while
  JetStream elects new leaders; then node 1 takes it), so what node 2 had
  delivered and ingest had not yet acknowledged (it acknowledges after the
  commit) is delivered again;
- node 1, the gateway's: what it had not acknowledged is published again
  through node 3, with the same sequence numbers.

Checked once nothing more can arrive (a marker published behind the load is
stored and ingest has drained): every event the broker acknowledged to the
publisher is stored exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import pytest

from tests.support.database import count, event_rows
from tests.support.ingest import Feeder, IngestProcess, drained_after_marker, reap
from tests.support.natscluster import NatsCluster, nats_binary
from tests.support.registry import batches, events_topic, make_events, seed_registry
from tests.support.waiting import wait_rows, wait_until

pytestmark = pytest.mark.slow

EVENTS, PER_MESSAGE = 20_000, 10


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    if nats_binary() is None:
        pytest.skip("nats-server is not installed (Debian package nats-server)")
    made = NatsCluster().start()
    yield made
    reap()
    made.stop()


def only(cluster: NatsCluster, node: int) -> str:
    return f"mqtt://127.0.0.1:{cluster.nodes[node].mqtt_port}?protocol=4"


@pytest.mark.parametrize("lost", [1, 0], ids=["ingest's node", "the gateway's node"])
async def test_a_broker_node_lost_under_load_nothing_lost_nothing_twice(
        cluster: NatsCluster, database: str, db: asyncpg.Connection, topic_prefix: str,
        lost: int) -> None:
    await seed_registry(database)
    events = make_events(EVENTS)
    stream = [(events_topic(topic_prefix), p) for p in batches(events, PER_MESSAGE)]
    proc = IngestProcess(database, cluster.url(first=1), topic_prefix, f"{topic_prefix[:11]}-nats")
    await asyncio.to_thread(proc.wait_ready, 60)
    assert f"connected to 127.0.0.1:{cluster.nodes[1].mqtt_port}" in proc.log
    feeder = Feeder(only(cluster, 0), stream, chunk=50, pause_s=0.2,
                    fallbacks=[only(cluster, 2), only(cluster, 1)])
    feeder.start()
    await wait_rows(db, EVENTS // 4, 90, lambda: proc.log[-2000:])

    cluster.nodes[lost].kill()
    killed_at, sent_at_kill = time.monotonic(), feeder.sent
    if lost == 1:
        try:  # to node 3 or, if it is still electing leaders and refuses, to node 1
            proc.wait_for_line("(connection 2)", 60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{cluster.logs()}") from None
        again = next(line for line in proc.lines if "(connection 2)" in line)
        assert f"127.0.0.1:{cluster.nodes[1].mqtt_port} " not in again, again  # not the lost node
    at_failover = await event_rows(db)

    async def writing_again() -> bool:
        return await event_rows(db) > at_failover

    await wait_until(writing_again, 60, lambda: proc.log[-3000:] + cluster.logs())
    recovered_at = time.monotonic()
    await asyncio.to_thread(feeder.join, 180)
    assert feeder.error is None and feeder.sent == len(stream)
    await wait_rows(db, EVENTS, 180, lambda: proc.log[-3000:] + cluster.logs())
    await drained_after_marker(db, feeder.url, topic_prefix, proc)

    stored = await event_rows(db)
    distinct = await count(db, "SELECT count(DISTINCT (gateway_id, seq)) FROM occupancy_events")
    assert (stored, distinct) == (EVENTS, EVENTS), "every acknowledged event, each once"
    duplicates = proc.totals()["duplicates"]
    print(f"\nbroker node {lost + 1} lost: published {EVENTS} events in {len(stream)} messages"
          f" ({sent_at_kill * PER_MESSAGE} before the kill), acknowledged {feeder.sent * PER_MESSAGE},"
          f" stored {stored}, lost {EVENTS - distinct}, duplicated {stored - distinct}"
          f" (redelivered and recognised by ingest: {duplicates});"
          f" kill→events stored again {recovered_at - killed_at:.1f}s")
