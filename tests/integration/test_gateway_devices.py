"""Device adapters end to end: a pymodbus TCP server as the sensor bus → gateway →
Mosquitto → ingest → PostgreSQL → the API's space states; ``cmd`` pushed down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from occupancy.health import Command, encode_command
from occupancy.topics import Channel, topic
from stack.embedded import Mosquitto, free_port, port_open
from tests.support.api import app_for, asgi_client
from tests.support.gateways import config_dict, make_config, running_gateway, simulated
from tests.support.ingest import running_ingest, settings_for
from tests.support.mqtt import publish
from tests.support.registry import GW, SITE, TENANT, seed_registry
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto
BAYS = [f"S-{i:03d}" for i in range(1, 9)]  # coils 0..7
SIM_ELSEWHERE = {"id": "sim-1", "kind": "simulated", "poll_s": 0.1, "change_probability": 0.0,
                 "spaces": [f"{SITE}/S-009", f"{SITE}/S-010"]}


class Bus:
    """A Modbus TCP server with one coil per bay, in this event loop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.device = ModbusDeviceContext(co=ModbusSequentialDataBlock(0, [False] * 16))
        self.server = ModbusTcpServer(ModbusServerContext(devices=self.device, single=True),
                                      address=("127.0.0.1", port))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve_forever())
        await wait_until(lambda: asyncio.to_thread(port_open, "127.0.0.1", self.port), 10,
                         "the Modbus server listening")

    def set(self, address: int, occupied: bool) -> None:
        self.device.setValues(1, address, [occupied])

    async def stop(self) -> None:
        await self.server.shutdown()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    b = Bus(free_port())
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


@pytest.fixture
async def api(database: str) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app_for(database)) as c:
        yield c


async def states(api: httpx.AsyncClient) -> dict[str, str]:
    r = await api.get(f"/v1/sites/{TENANT}/{SITE}/spaces")
    assert r.status_code == 200, r.text
    return {s["space"]: s["state"] for s in r.json() if s["space"] in BAYS}


def modbus_device(port: int) -> dict[str, Any]:
    return {"id": "pgs-bus", "kind": "modbus", "host": "127.0.0.1", "port": port, "unit": 1,
            "table": "coils", "poll_s": 0.1, "timeout_s": 0.5,
            "bays": [{"site": SITE, "prefix": "S-", "count": len(BAYS), "address": 0}]}


async def test_bays_toggled_on_the_bus_reach_the_api_and_a_dead_bus_goes_unknown(
        database: str, db: asyncpg.Connection, topic_prefix: str, tmp_path: Path, bus: Bus,
        api: httpx.AsyncClient, mosquitto_factory: Callable[..., Mosquitto]) -> None:
    await seed_registry(database)
    broker = mosquitto_factory()
    port = bus.server.comm_params.source_address[1]
    config = make_config(config_dict(broker.url, topic_prefix, tmp_path / "state",
                                     [modbus_device(port), SIM_ELSEWHERE], stale_after_s=1.5,
                                     debounce={"confirm_readings": 2}), tmp_path)
    occupied = {0, 3, 5}
    for a in occupied:
        bus.set(a, True)
    want = {b: "occupied" if i in occupied else "free" for i, b in enumerate(BAYS)}
    async with running_ingest(settings_for(database, broker.url, topic_prefix)), \
            running_gateway(config) as (service, _):
        await wait_until(lambda: _states_are(api, want), 20)
        bus.set(0, False)
        bus.set(7, True)
        want |= {"S-001": "free", "S-008": "occupied"}
        await wait_until(lambda: _states_are(api, want), 20)
        await bus.stop()  # the sensor bus dies: its bays become unknown after 1.5 s
        await wait_until(lambda: _states_are(api, dict.fromkeys(BAYS, "unknown")), 20)
        health = {d.id: d for d in service.health().devices}
        assert not health["pgs-bus"].ok and health["pgs-bus"].errors > 0
        assert health["pgs-bus"].unknown == len(BAYS) and health["pgs-bus"].last_error
        assert health["sim-1"].ok and health["sim-1"].unknown == 0  # the other device goes on
        assert health["sim-1"].battery == 100.0
        assert await db.fetchval(  # the simulated spaces kept reporting
            "SELECT count(*) FROM space_state st JOIN spaces s ON s.id = st.space_id "
            "WHERE s.slug = ANY($1) AND st.state <> 'unknown'", ["S-009", "S-010"]) == 2


async def _states_are(api: httpx.AsyncClient, want: dict[str, str]) -> bool:
    return await states(api) == want


async def test_cmd_changes_the_heartbeat_and_the_version_is_reported(
        database: str, topic_prefix: str, tmp_path: Path, broker: Mosquitto,
        caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(config_dict(broker.url, topic_prefix, tmp_path / "state",
                                     [simulated(5, poll_s=0.2, p=0.0)], heartbeat_s=3600), tmp_path)
    cmd_topic = topic(TENANT, GW, Channel.CMD, topic_prefix)
    async with running_gateway(config) as (service, _):
        await wait_until(lambda: _async(service.node.stats().connected), 10)
        # the machines have run: every space reported its first state (a heartbeat due at
        # start would be stored with those reports); none is due for an hour
        await wait_until(lambda: _async(service.stats().changes >= 5), 10, "the first reports")
        assert service.stats().heartbeats == 0
        payload = encode_command(Command(version="7", heartbeat_s=0.3))
        await asyncio.to_thread(publish, broker.url, [(cmd_topic, payload)], retain=True)
        await wait_until(lambda: _async(service.stats().heartbeats >= 10), 10)
        assert service.health().config_version == "7"
        await asyncio.to_thread(publish, broker.url, [(cmd_topic, b'{"v":1}')], retain=True)
        await wait_until(lambda: _async("ignoring a bad cmd" in caplog.text), 10, "the bad cmd handled")
        assert service.health().config_version == "7"  # a bad cmd is ignored
    await asyncio.to_thread(publish, broker.url, [(cmd_topic, b"")], retain=True)


async def _async(value: bool) -> bool:
    return value
