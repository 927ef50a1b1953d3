"""Ingest against real Mosquitto and PostgreSQL: exactly once, dead letters, status."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from occupancy.topics import Channel, topic
from occupancy.wire import MAX_PAYLOAD_BYTES, Status, encode_status
from tests.support.database import count
from tests.support.ingest import birth_marker, gateway_is, publish_then_marker, running_ingest, settings_for
from tests.support.mqtt import publish
from tests.support.registry import (
    GW,
    GW_OTHER,
    SITE,
    TENANT,
    batches,
    events_topic,
    make_events,
    seed_registry,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto


async def test_duplicates_resends_and_shuffling_store_each_event_once(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    await seed_registry(database)
    events = make_events(2000)
    payloads = batches(events, 20)
    rng = random.Random(7)
    resent = rng.sample(payloads, 30)
    # duplicates inside the stream too: a batch overlapping its neighbours
    overlap = batches(events[990:1030], 40)
    stream = payloads + resent + overlap
    rng.shuffle(stream)
    settings = settings_for(database, broker.url, topic_prefix)
    async with running_ingest(settings):
        await asyncio.to_thread(publish, broker.url, [(events_topic(topic_prefix), p) for p in stream])
        await wait_until(lambda: _all_acked(db, len(events)))
    assert await count(db, "SELECT count(*) FROM occupancy_events") == 2000
    assert await count(db, "SELECT count(DISTINCT (gateway_id, seq)) FROM occupancy_events") == 2000
    newest = {}
    for e in events:
        newest[str(e.space.space)] = e
    rows = await db.fetch("SELECT sp.slug, ss.state, ss.observed_at, ss.seq FROM space_state ss "
                          "JOIN spaces sp ON sp.id = ss.space_id")
    assert len(rows) == 50
    for r in rows:
        e = newest[r["slug"]]
        assert (r["state"], r["observed_at"], r["seq"]) == (e.state.value, e.at, e.seq)


async def _all_acked(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM occupancy_events") >= n


def _event(seq: int, space: str = "S-001", at: datetime | None = None, **extra: object) -> dict:
    at = at or datetime.now(UTC) - timedelta(seconds=5)
    return {"seq": seq, "space": f"{SITE}/{space}", "state": "occupied",
            "at": at.isoformat().replace("+00:00", "Z"), "source": "sensor", **extra}


def _msg(events: list[dict], gateway: str = GW, v: object = 1) -> bytes:
    return json.dumps({"v": v, "gateway": gateway, "boot": 1, "events": events}).encode()


async def test_bad_messages_go_to_dead_letters_and_the_rest_flows(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    await seed_registry(database)
    t = events_topic(topic_prefix)
    future = datetime.now(UTC) + timedelta(days=2)
    oversize = _msg([_event(50, extra="x" * MAX_PAYLOAD_BYTES)])
    stream = [
        (t, _msg([_event(1)])),                                     # valid, before
        (t, b'{"v": 1, "gateway": "gw1", "events": [ nope'),        # malformed JSON
        (t, _msg([_event(2)], v=2)),                                # wrong version
        (events_topic(topic_prefix, "gw-ghost"), _msg([_event(3)], gateway="gw-ghost")),
        (events_topic(topic_prefix, GW_OTHER), _msg([_event(4)], gateway=GW_OTHER)),  # not bound
        (t, _msg([_event(5, at=future)])),                          # far in the future
        (t, oversize),                                              # oversize
        (t, _msg([_event(6, space="S-002"), _event(7, space="X-999")])),  # one bad event of two
        (t, _msg([_event(8, space="S-003")])),                      # valid, after
    ]
    settings = settings_for(database, broker.url, topic_prefix)
    async with running_ingest(settings) as task:
        await asyncio.to_thread(publish, broker.url, stream)
        await wait_until(lambda: _dead_count(db, 7))
        await wait_until(lambda: _all_acked(db, 3))
        assert not task.done(), "the service must keep running"
    rows = await db.fetch("SELECT reason, topic, payload, detail, payload_bytes, payload_sha256 "
                          "FROM dead_letters ORDER BY id")
    reasons = sorted(r["reason"] for r in rows)
    assert reasons == sorted(["malformed_json", "unsupported_version", "unknown_gateway",
                              "space_not_bound", "future_timestamp", "oversize", "space_not_bound"])
    by_payload = {bytes(r["payload"]): r for r in rows}
    cut = by_payload[oversize[:4096]]  # the payload is kept cut, with its length and hash
    assert (cut["payload_bytes"], bytes(cut["payload_sha256"])) == (
        len(oversize), hashlib.sha256(oversize).digest())
    assert by_payload[stream[1][1]]["topic"] == t
    partial = by_payload[stream[7][1]]
    assert json.loads(partial["detail"])["accepted"] == 1
    seqs = {r["seq"] for r in await db.fetch("SELECT seq FROM occupancy_events")}
    assert seqs == {1, 6, 8}


async def _dead_count(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM dead_letters") >= n


async def test_birth_and_last_will_set_gateway_online_state(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    await seed_registry(database)
    status_topic = topic(TENANT, GW, Channel.STATUS, topic_prefix)
    # one writer: batches commit in the order they were received (the marker's premise)
    settings = settings_for(database, broker.url, topic_prefix, writers=1)
    online = "SELECT online, boot FROM gateways WHERE slug = $1"
    async with running_ingest(settings):
        publish(broker.url, [(status_topic, encode_status(Status(True, 4, datetime.now(UTC))))],
                retain=True)
        await wait_until(lambda: _is(db, online, (True, 4)))
        # the last will of an older session must not mark the newer one offline
        stale = [(status_topic, encode_status(Status(False, 3)))]
        await publish_then_marker(broker.url, stale, birth_marker(topic_prefix, 1),
                                  lambda: gateway_is(db, GW_OTHER, (True, 1)))
        assert tuple(await db.fetchrow(online, GW)) == (True, 4)
        publish(broker.url, [(status_topic, encode_status(Status(False, 4)))], retain=True)
        await wait_until(lambda: _is(db, online, (False, 4)))
    publish(broker.url, [(status_topic, b"")], retain=True)  # clear the retained message


async def _is(db: asyncpg.Connection, sql: str, want: tuple[object, ...]) -> bool:
    row = await db.fetchrow(sql, GW)
    return row is not None and tuple(row) == want


async def test_mqtt_311_plain_subscription_works_too(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    """Brokers that speak only MQTT 3.1.1 get a plain (unshared) persistent subscription."""
    await seed_registry(database)
    events = make_events(300)
    settings = settings_for(database, broker.url, topic_prefix, protocol=4)
    async with running_ingest(settings):
        await asyncio.to_thread(publish, broker.url,
                                [(events_topic(topic_prefix), p) for p in batches(events, 30)])
        await wait_until(lambda: _all_acked(db, 300))
    assert await count(db, "SELECT count(*) FROM occupancy_events") == 300
