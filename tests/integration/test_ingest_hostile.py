"""Ingest against messages built to stop it, on real Mosquitto and PostgreSQL.

Each test names the attack. Every poison message must be dead-lettered with a
reason and acknowledged while ingest keeps running and stores what follows it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from occupancy.wire import MAX_BOOT, Status, encode_status
from tests.support.database import count, has_seq
from tests.support.ingest import (
    birth_marker,
    event_marker,
    gateway_is,
    publish_then_marker,
    running_ingest,
    settings_for,
)
from tests.support.mqtt import publish
from tests.support.registry import GW, GW_OTHER, SITE, events_topic, seed_registry, status_topic
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto

def _event(seq: int, at: str | datetime, space: str = "S-001", state: str = "occupied") -> str:
    at_text = at if isinstance(at, str) else at.isoformat()
    return json.dumps({"seq": seq, "space": f"{SITE}/{space}", "state": state, "at": at_text})


def _batch(*events: str, boot: str = "1") -> bytes:
    return f'{{"v":1,"gateway":"{GW}","boot":{boot},"events":[{",".join(events)}]}}'.encode()


def _now(seconds: float = -5) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def _run_poison(database: str, db: asyncpg.Connection, broker, topic_prefix: str,  # type: ignore[no-untyped-def]
                      poison: list[tuple[str, bytes]], **ingest: object) -> list[asyncpg.Record]:
    """Publish the poison then a valid marker; return the dead letters once the marker is in."""
    await seed_registry(database)
    settings = settings_for(database, broker.url, topic_prefix, **ingest)
    async with running_ingest(settings) as task:
        await publish_then_marker(broker.url, poison, event_marker(topic_prefix, 999_999),
                                  lambda: has_seq(db, 999_999))
        await wait_until(lambda: _dead_at_least(db, len(poison)))
        assert not task.done(), "ingest must keep running"
    return list(await db.fetch("SELECT reason, detail, topic FROM dead_letters ORDER BY id"))


async def _dead_at_least(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM dead_letters") >= n


async def test_huge_integer_is_dead_lettered_not_fatal(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    t = events_topic(topic_prefix)
    poison = [(t, _batch(_event(1, _now()), boot="9" * 4301)),
              (t, b'{"v":1,"x":' + b"1" * 50_000 + b"}"),
              (t, _batch(_event(2, _now())).replace(b'"seq": 2', b'"seq": ' + b"7" * 5000))]
    dead = await _run_poison(database, db, broker, topic_prefix, poison)
    assert [r["reason"] for r in dead] == ["out_of_range"] * 3


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                "0001-01-01T00:00:00Z"])
async def test_year_one_and_9999_times_in_events_and_retained_status_are_dead_lettered(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str, at: str) -> None:
    retained_status = status_topic(topic_prefix)
    status = json.dumps({"v": 1, "online": True, "boot": 3, "at": at}).encode()
    poison = [(events_topic(topic_prefix), _batch(_event(1, at))), (retained_status, status)]
    try:
        dead = await _run_poison(database, db, broker, topic_prefix, poison)
    finally:
        publish(broker.url, [(retained_status, b"")], retain=True)
    assert [r["reason"] for r in dead] == ["out_of_range", "out_of_range"]
    assert await count(db, "SELECT count(*) FROM occupancy_events") == 1  # the marker only


async def test_1970_event_beside_current_one_creates_no_partition_storm(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    parts = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'occupancy_events'::regclass"
    before = await count(db, parts)
    old = [_event(1, "1970-01-01T00:00:00Z"), _event(2, "2000-01-01T00:00:00Z"),
           _event(3, _now() - timedelta(days=401))]
    poison = [(events_topic(topic_prefix), _batch(*old, _event(4, _now(), space="S-002")))]
    dead = await _run_poison(database, db, broker, topic_prefix, poison)
    assert [r["reason"] for r in dead] == ["out_of_range"]  # 1970 is refused by decode
    poison = [(events_topic(topic_prefix), _batch(*old[1:], _event(5, _now(), space="S-003")))]
    settings = settings_for(database, broker.url, topic_prefix)
    async with running_ingest(settings):
        await asyncio.to_thread(publish, broker.url, poison)
        await wait_until(lambda: has_seq(db, 5))
    (reason, detail) = await db.fetchrow("SELECT reason, detail FROM dead_letters ORDER BY id DESC")
    assert reason == "too_old"
    assert [r["reason"] for r in json.loads(detail)["rejected"]] == ["too_old", "too_old"]
    assert await count(db, parts) == before  # today's partition existed already


async def test_nan_infinity_and_nul_are_dead_lettered_not_fatal(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    t = events_topic(topic_prefix)
    ok = _event(1, _now())
    poison = [(t, _batch(ok.replace("}", ', "confidence": NaN}'))),
              (t, _batch(ok.replace("}", ', "confidence": 1e999}'))),
              (t, _batch(ok.replace("S-001", "S-0\\u0000"))),
              (t, _batch(ok.replace(f"{SITE}/S-001", "\\ud800/x"))),
              (t, b"[" * 200_000 + b"]" * 200_000)]
    dead = await _run_poison(database, db, broker, topic_prefix, poison)
    assert [r["reason"] for r in dead] == ["out_of_range", "out_of_range", "bad_field", "bad_field",
                                           "oversize"]


async def _gateway(db: asyncpg.Connection, slug: str) -> tuple[bool, int]:
    row = await db.fetchrow("SELECT online, boot FROM gateways WHERE slug = $1", slug)
    return (row["online"], row["boot"])


async def test_boot_max_cannot_pin_gateway_offline(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    await seed_registry(database)
    gw1, gw2 = (status_topic(topic_prefix, g) for g in (GW, GW_OTHER))

    def status(online: bool, boot: int) -> bytes:
        return encode_status(Status(online, boot, _now() if online else None))

    async def then_marker(messages: list[tuple[str, bytes]], boot: int) -> None:
        """Publish, then a birth of gw2 as the marker that everything before it is in."""
        await publish_then_marker(broker.url, messages, birth_marker(topic_prefix, boot),
                                  lambda: gateway_is(db, GW_OTHER, (True, boot)))

    # one writer: batches commit in the order they were received
    settings = settings_for(database, broker.url, topic_prefix, writers=1, boot_reset_after_s=2)
    try:
        async with running_ingest(settings):
            await then_marker([(gw1, status(True, 4))], 1)
            assert await _gateway(db, GW) == (True, 4)
            forged = json.dumps({"v": 1, "online": False, "boot": 2**63 - 1}).encode()
            await then_marker([(gw1, forged), (gw1, status(False, MAX_BOOT))], 2)
            assert await _gateway(db, GW) == (True, 4)  # both refused
            reasons = [r["reason"] for r in await db.fetch("SELECT reason FROM dead_letters ORDER BY id")]
            assert reasons == ["out_of_range", "boot_jump"]
            # the largest jump a death may make pins it, but only until a birth after a quiet spell
            await then_marker([(gw1, status(False, 1004)), (gw1, status(True, 5))], 3)
            assert await _gateway(db, GW) == (False, 1004)
            await asyncio.sleep(2.1)
            await then_marker([(gw1, status(True, 6))], 4)
            assert await _gateway(db, GW) == (True, 6)
            await then_marker([(gw1, status(False, 6))], 5)  # and its last will works again
            assert await _gateway(db, GW) == (False, 6)
    finally:
        publish(broker.url, [(gw1, b""), (gw2, b"")], retain=True)


async def _state(db: asyncpg.Connection, space: str) -> str | None:
    return await db.fetchval("SELECT ss.state FROM space_state ss JOIN spaces sp ON sp.id = ss.space_id "
                             "WHERE sp.slug = $1", space)


async def test_event_from_a_fast_clock_cannot_hold_space_state_against_later_observations(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    await seed_registry(database)
    t = events_topic(topic_prefix)
    settings = settings_for(database, broker.url, topic_prefix)
    async with running_ingest(settings):
        # the gateway's clock runs 4 minutes ahead (inside max_skew: accepted) …
        await asyncio.to_thread(publish, broker.url, [(t, _batch(_event(1, _now(240))))])
        await wait_until(lambda: has_seq(db, 1))
        assert await _state(db, "S-001") == "occupied"
        # … then is corrected: the next real observation must win at once
        await asyncio.to_thread(publish, broker.url, [(t, _batch(_event(2, _now(0), state="free")))])
        await wait_until(lambda: has_seq(db, 2))
        assert await _state(db, "S-001") == "free"
        # an older observation arriving late still does not move the state back
        late = _batch(_event(4, _now(-60)), _event(3, _now(0), space="S-002"))
        await asyncio.to_thread(publish, broker.url, [(t, late)])
        await wait_until(lambda: has_seq(db, 3))
        assert await _state(db, "S-001") == "free"
    assert await count(db, "SELECT count(*) FROM dead_letters") == 0


async def test_backlog_on_two_distant_days_creates_those_two_partitions_not_the_range(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    await seed_registry(database)
    old, older = _now() - timedelta(days=30), _now() - timedelta(days=90)
    parts = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'occupancy_events'::regclass"
    before = await count(db, parts)
    settings = settings_for(database, broker.url, topic_prefix)
    async with running_ingest(settings):
        await asyncio.to_thread(publish, broker.url, [(events_topic(topic_prefix),
                                                       _batch(_event(1, older), _event(2, old)))])
        await wait_until(lambda: has_seq(db, 2))
    assert await count(db, parts) == before + 2
    assert await count(db, "SELECT count(*) FROM occupancy_events") == 2
