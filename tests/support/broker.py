"""Brokers of the tests that log clients in: two tenants with a gateway of the same id,
credentials issued through the registry, and a broker run from the files
``parkbazaar broker config`` writes (the clients that probe it are in ``mqtt``)."""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from dashboard_api import registry
from dashboard_api.broker import BrokerLayout, Listener
from dashboard_api.broker_registry import create_account
from dashboard_api.broker_sync import Owner, write_config
from stack.embedded import Mosquitto, free_port
from tests.support.registry import GW, GW_OTHER, TENANT, seed_registry

OTHER_TENANT = "t2"  # has a gateway called GW too


async def seed_two_tenants(dsn: str) -> None:
    """``seed_registry``'s t1 (gw1 bound to lot1, gw2 to nothing) and the same under t2, so a
    message that got through for t2/gw1 would be stored."""
    await seed_registry(dsn)
    await seed_registry(dsn, OTHER_TENANT)


@dataclass
class Credentials:
    """Secrets issued for the test: gateway (tenant, id) → secret, and the service accounts."""

    gateways: dict[tuple[str, str], str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)


async def issue_all(dsn: str) -> Credentials:
    """Credentials of t1/gw1, t1/gw2, t2/gw1, and the accounts ingest-1 and ops-1."""
    creds = Credentials()
    con = await asyncpg.connect(dsn)
    try:
        for key in ((TENANT, GW), (TENANT, GW_OTHER), (OTHER_TENANT, GW)):
            creds.gateways[key] = await registry.rotate_credentials(con, "test", *key)
        creds.accounts["ingest-1"] = await create_account(con, "ingest-1", "ingest", actor="test")
        creds.accounts["ops-1"] = await create_account(con, "ops-1", "operator", actor="test")
    finally:
        await con.close()
    return creds


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


async def start_broker(dsn: str, out: Path, prefix: str, listeners: Sequence[Listener],
                       started: list[Mosquitto]) -> Mosquitto:
    """Write the broker's files from the registry (as ``broker config`` does) and run them.
    The first listener's port is the broker's ``port``."""
    layout = BrokerLayout(out, listeners, current_user(), out / "mosquitto.log")
    con = await asyncpg.connect(dsn)
    try:
        await write_config(con, layout, prefix, Owner.named(layout.user))
    finally:
        await con.close()
    broker = Mosquitto(out, port=listeners[0].port, config=out / "mosquitto.conf").start()
    started.append(broker)
    return broker


def plain(port: int | None = None) -> Listener:
    return Listener("127.0.0.1", port or free_port())
