"""The commands as an operator types them: ``parkbazaar broker account create``,
``broker gateway issue``, ``broker config --out DIR --listen … --services …``, then
``mosquitto -c DIR/mosquitto.conf``; ingest logs in through its broker URL on the
services' listener, the gateway on its own through
``broker.username`` and ``broker.password_file`` of its config file."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from dashboard_api import DatabaseUnavailable
from dashboard_api.auth import verify_secret
from dashboard_api.broker_sync import SyncStats, run_sync
from stack.embedded import Mosquitto, free_port, mosquitto_binary, wait_port
from tests.support.broker import seed_two_tenants
from tests.support.database import count
from tests.support.gateways import config_dict, make_config, running_gateway, simulated
from tests.support.ingest import running_ingest, settings_for
from tests.support.mqtt import refused
from tests.support.registry import GW, TENANT
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto
REPO = Path(__file__).resolve().parents[2]
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]{40,}$")


@pytest.fixture
def started() -> Iterator[list[Mosquitto]]:
    brokers: list[Mosquitto] = []
    yield brokers
    for m in brokers:
        m.stop(kill=True)


def cli(dsn: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKBAZAAR_")}
    env |= {"PARKBAZAAR_DATABASE_URL": dsn, "PARKBAZAAR_TOPIC_PREFIX": prefix}
    return subprocess.run([sys.executable, "-m", "parkbazaar", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60, check=False)


async def test_the_commands_make_a_broker_that_admits_exactly_the_registry(
        database: str, db: asyncpg.Connection, topic_prefix: str, tmp_path: Path,
        started: list[Mosquitto]) -> None:
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is not installed (apt-get install mosquitto)")
    await seed_two_tenants(database)
    made = cli(database, topic_prefix, "broker", "account", "create", "ingest-7", "--role", "ingest")
    assert made.returncode == 0, made.stderr
    account = json.loads(made.stdout)
    assert set(account) == {"username", "secret"} and account["username"] == "ingest-7"
    assert URL_SAFE.match(account["secret"])
    stored = await db.fetchval("SELECT secret_hash FROM broker_accounts WHERE username = 'ingest-7'")
    assert verify_secret(account["secret"], stored) and account["secret"] not in stored
    again = cli(database, topic_prefix, "broker", "account", "create", "ingest-7", "--role", "ingest")
    assert again.returncode == 2 and "exists already" in again.stderr
    issued = cli(database, topic_prefix, "broker", "gateway", "issue", f"{TENANT}/{GW}")
    gateway = json.loads(issued.stdout)
    assert gateway["username"] == f"{TENANT}/{GW}" and URL_SAFE.match(gateway["secret"])

    port, services, out = free_port(), free_port(), tmp_path / "broker"
    done = cli(database, topic_prefix, "broker", "config", "--out", str(out), "--listen", f"127.0.0.1:{port}",
               "--services", f"127.0.0.1:{services}")
    assert done.returncode == 0, done.stderr
    started.append(Mosquitto(out, port=port, config=out / "mosquitto.conf").start())
    wait_port("127.0.0.1", services)
    assert refused(port, None) == "Not authorized"

    (tmp_path / "gw.secret").write_text(gateway["secret"] + "\n")
    data = config_dict(f"mqtt://127.0.0.1:{port}", topic_prefix, tmp_path / "state",
                       [simulated(20, poll_s=0.05, p=0.5)])
    data["broker"] |= {"username": gateway["username"], "password_file": "gw.secret"}
    config = make_config(data, tmp_path)
    ingest_url = f"mqtt://{account['username']}:{account['secret']}@127.0.0.1:{services}"
    async with running_ingest(settings_for(database, ingest_url, topic_prefix)), running_gateway(config):
        await wait_until(lambda: _stored(db, 20), 20)
    assert await count(db, "SELECT count(*) FROM dead_letters") == 0
    synced = cli(database, topic_prefix, "broker", "sync", "--out", str(out), "--once")
    assert synced.returncode == 0, synced.stderr


async def _stored(db: asyncpg.Connection, n: int) -> bool:
    return await count(db, "SELECT count(*) FROM occupancy_events") >= n


async def test_sync_retries_a_lost_database_a_bounded_time_then_gives_up(tmp_path: Path) -> None:
    stats = SyncStats()
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # nobody listens there
    with pytest.raises(DatabaseUnavailable, match="no database for 1s"):
        await run_sync(nowhere, tmp_path / "broker", "parkbazaar/v1", owner=None, pid=lambda: None,
                       stop=asyncio.Event(), retry_max_s=1.0, stats=stats)
    assert stats.retries >= 2 and stats.checks == 0
    assert not (tmp_path / "broker" / "passwd").exists()  # nothing written from nothing
