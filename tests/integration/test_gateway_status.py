"""Birth and last will through real ingest: a killed gateway goes offline; an older
session's will never undoes a newer session's birth."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from occupancy.topics import Channel, topic
from occupancy.wire import Status, encode_status
from stack.embedded import Mosquitto
from tests.support.gateways import config_dict, gateway_process, simulated, terminate, write_config
from tests.support.ingest import birth_marker, gateway_is, publish_then_marker, running_ingest, settings_for
from tests.support.mqtt import publish
from tests.support.registry import GW, GW_OTHER, TENANT, seed_registry
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto


async def status(db: asyncpg.Connection) -> tuple[bool, int]:
    row = await db.fetchrow("SELECT online, boot FROM gateways WHERE slug = $1", GW)
    assert row is not None
    return bool(row["online"]), int(row["boot"])


async def test_killed_gateway_goes_offline_and_a_stale_will_is_ignored(
        database: str, db: asyncpg.Connection, topic_prefix: str, tmp_path: Path,
        mosquitto_factory: Callable[..., Mosquitto]) -> None:
    await seed_registry(database)
    broker = mosquitto_factory()
    path = write_config(config_dict(broker.url, topic_prefix, tmp_path / "state",
                                    [simulated(5, poll_s=0.2)]), tmp_path / "gw.yaml")
    status_topic = topic(TENANT, GW, Channel.STATUS, topic_prefix)

    async def is_(want: tuple[bool, int]) -> bool:
        return await status(db) == want

    # protocol 4: a plain subscription, which Mosquitto restores after the restart below
    # (docs: README, "Broker"); one writer: batches commit in the order they arrive, so a
    # marker published last proves everything before it was decided
    settings = settings_for(database, broker.url, topic_prefix, protocol=4, writers=1)
    async with running_ingest(settings):
        proc = gateway_process(path)
        try:
            await wait_until(lambda: is_((True, 1)), 15)
            proc.kill()  # the connection is cut: the broker publishes the will of boot 1
            proc.wait(10)
            await wait_until(lambda: is_((False, 1)), 15)
        finally:
            proc.kill()
        proc = gateway_process(path)
        try:
            await wait_until(lambda: is_((True, 2)), 15)
            # the older session's will arrives late (say, redelivered): it must not count
            old_will = encode_status(Status(online=False, boot=1))
            await asyncio.to_thread(publish, broker.url, [(status_topic, old_will)], retain=True)
            await publish_then_marker(broker.url, [], birth_marker(topic_prefix, 1),
                                      lambda: gateway_is(db, GW_OTHER, (True, 1)))
            assert await status(db) == (True, 2)
            # the broker itself restarts: it publishes boot 2's will as it goes, and the
            # gateway's next session (boot 3) is born after it
            broker.stop()
            broker.start()
            await wait_until(lambda: is_((True, 3)), 30)
            # the stale wills came before boot 3's birth; a marker behind it all proves
            # ingest has decided each of them
            await publish_then_marker(broker.url, [], birth_marker(topic_prefix, 2),
                                      lambda: gateway_is(db, GW_OTHER, (True, 2)))
            assert await status(db) == (True, 3)
        finally:
            out = terminate(proc)
        assert proc.returncode == 0, out
        await wait_until(lambda: is_((False, 3)), 15)  # a clean stop says offline itself
