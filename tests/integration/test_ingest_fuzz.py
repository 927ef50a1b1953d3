"""Thousands of random and mutated payloads through a real broker into a running
ingest: each one ends up stored or dead-lettered, and ingest lives on.

Accounting, per distinct payload (by SHA-256, which every dead letter keeps):
either a dead letter has its hash, or it decodes as a valid message of its
topic's gateway and every one of its events is in ``occupancy_events``.
Payloads are made distinct before publishing, so the two sides can be counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time

import asyncpg
import pytest
from prometheus_client import REGISTRY

from occupancy.wire import WireError, decode_events
from tests.support.database import count, has_seq
from tests.support.ingest import running_ingest, settings_for
from tests.support.mqtt import publish
from tests.support.payloads import mutate
from tests.support.registry import GW, GW_OTHER, batches, events_topic, make_events, seed_registry
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

FUZZED = 3000
SEED = 11


def _payloads(prefix: str, rng: random.Random) -> list[tuple[str, bytes]]:
    """Valid batches, their mutations, random JSON and random bytes, on a few topics."""
    valid = batches(make_events(600), 3)  # 200 messages, seqs 1..600, current times
    topics = [events_topic(prefix)] * 8 + [events_topic(prefix, GW_OTHER),
                                           events_topic(prefix, "gw-ghost"),
                                           f"{prefix}/UPPER/{GW}/events"]
    out: dict[bytes, str] = {}
    while len(out) < FUZZED:
        t = rng.choice(topics)
        # the payload names the topic's gateway, so mutations get past the gateway check
        base = rng.choice(valid).replace(b'"gateway":"gw1"', f'"gateway":"{t.split("/")[-2]}"'.encode())
        kind = rng.random()
        if kind < 0.05:
            raw = base
        elif kind < 0.8:
            raw = mutate(base, rng, rng.randint(1, 3))
        elif kind < 0.9:
            raw = json.dumps(_random_json(rng, 3)).encode()
        else:
            raw = rng.randbytes(rng.randint(0, 300))
        out.setdefault(raw, t)
    return [(t, p) for p, t in out.items()]


def _random_json(rng: random.Random, depth: int) -> object:
    leaves = [None, True, 1, -1, 2**70, 0.5, "x", "lot1/S-001", "2026-01-01T00:00:00Z", [], {}]
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(leaves)
    if rng.random() < 0.5:
        return [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    keys = ["v", "gateway", "boot", "events", "seq", "space", "state", "at", "zz"]
    return {rng.choice(keys): _random_json(rng, depth - 1) for _ in range(rng.randint(0, 5))}


def _messages_processed() -> float:
    return REGISTRY.get_sample_value("parkbazaar_ingest_messages_total") or 0.0


async def test_thousands_of_random_and_mutated_payloads_are_stored_or_dead_lettered(
        database: str, db: asyncpg.Connection, broker, topic_prefix: str) -> None:
    await seed_registry(database)
    stream = _payloads(topic_prefix, random.Random(SEED))
    last = batches(make_events(1, start_seq=10_000), 1)[0]
    settings = settings_for(database, broker.url, topic_prefix, dead_letter_burst=1_000_000,
                            dead_letter_max_payload_bytes=64)
    before = _messages_processed()
    started = time.monotonic()
    async with running_ingest(settings) as task:
        await asyncio.to_thread(publish, broker.url, stream)
        await wait_until(lambda: _processed(before, len(stream)), timeout=120)
        await asyncio.to_thread(publish, broker.url, [(events_topic(topic_prefix), last)])
        await wait_until(lambda: has_seq(db, 10_000))  # alive: a valid message after the storm
        assert not task.done()
    dead = {bytes(r["payload_sha256"]) for r in await db.fetch("SELECT payload_sha256 FROM dead_letters")}
    found = await db.fetch("SELECT seq, observed_at FROM occupancy_events")
    rows = {(r["seq"], r["observed_at"]) for r in found}
    stored = lost = 0
    for t, payload in stream:
        if hashlib.sha256(payload).digest() in dead:
            continue
        if _all_stored(t, payload, rows):
            stored += 1
        else:
            lost += 1
    assert lost == 0, f"{lost} messages neither stored nor dead-lettered"
    assert stored + len(dead) == len(stream)
    assert await count(db, "SELECT count(*) FROM dead_letters") == len(dead)  # each once
    reasons = dict(await db.fetch("SELECT reason, count(*) FROM dead_letters GROUP BY 1 ORDER BY 2 DESC"))
    print(f"\nfuzzed {len(stream)} payloads: {len(dead)} dead-lettered, {stored} stored, "
          f"0 crashes, {time.monotonic() - started:.1f}s; reasons {reasons}")


async def _processed(before: float, n: int) -> bool:
    return _messages_processed() - before >= n


def _all_stored(topic: str, payload: bytes, rows: set[tuple[int, object]]) -> bool:
    gateway = topic.split("/")[-2]
    if gateway != GW:
        return False  # gw2 has no bound space, others are not provisioned: never stored
    try:
        batch = decode_events(payload, expect_gateway=gateway)
    except WireError:
        return False
    return all((e.seq, e.at) in rows for e in batch.events)
