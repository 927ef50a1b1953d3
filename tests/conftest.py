"""Shared fixtures: real PostgreSQL and real Mosquitto, never mocks.

PostgreSQL: the machine's server at 127.0.0.1:5432 when it answers
(``PARKBAZAAR_TEST_DATABASE_URL`` overrides), otherwise an embedded one started
once for the session. Each test gets a database of its own, migrated.

MQTT: a mosquitto process of the session's own on a free port with the queue
limits raised; tests that stop a broker start their own with ``mosquitto_factory``.
Each test gets its own topic prefix, so tests never see each other's messages.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from ingest.migrate import migrate_dsn
from stack.db import connected
from stack.embedded import EmbeddedPostgres, Mosquitto, mosquitto_binary, port_open
from tests.support.database import database_name, scratch_database
from tests.support.pki import Pki, make_pki

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _machine_dsn() -> str | None:
    explicit = os.environ.get("PARKBAZAAR_TEST_DATABASE_URL")
    if explicit:
        return explicit
    if port_open("127.0.0.1", 5432):
        return "postgresql://postgres@127.0.0.1:5432/postgres"
    return None


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DSN of a maintenance database on a server the tests may create databases on."""
    dsn = _machine_dsn()
    if dsn:
        yield dsn
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg")).start()
    try:
        yield server.dsn()
    finally:
        server.stop()


@pytest.fixture
def empty_database(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh, empty database of this test's own; dropped afterwards."""
    with scratch_database(pg_admin_dsn) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def migrated_template(pg_admin_dsn: str) -> Iterator[str]:
    """The name of a database migrated once (plain flavour) that ``database`` copies: a
    copy costs a fraction of running every migration again for each test. Nothing
    connects to it after the migration (PostgreSQL copies only an idle template)."""
    with scratch_database(pg_admin_dsn, "pbtmpl") as dsn:
        asyncio.run(migrate_dsn(dsn, "plain"))
        yield database_name(dsn)


@pytest.fixture
def database(pg_admin_dsn: str, migrated_template: str) -> Iterator[str]:
    """A fresh database of this test's own, migrated (plain PostgreSQL flavor)."""
    with scratch_database(pg_admin_dsn, template=migrated_template) as dsn:
        yield dsn


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this test's migrated database."""
    async with connected(database) as con:
        yield con


@pytest.fixture
def topic_prefix() -> str:
    """This test's own topic prefix, in place of ``parkbazaar/v1``."""
    return f"t{uuid.uuid4().hex[:10]}/parkbazaar/v1"


def _need_mosquitto() -> None:
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto binary is not installed (apt-get install mosquitto)")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A mosquitto of the session's own (raised queue limits), shared by tests."""
    _need_mosquitto()
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as m:
        yield m


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Start brokers that this test may stop, kill and restart; all stopped at the end."""
    _need_mosquitto()
    started: list[Mosquitto] = []

    def make(persistence: bool = True) -> Mosquitto:
        m = Mosquitto(tmp_path / f"mosquitto{len(started)}", persistence=persistence).start()
        started.append(m)
        return m

    yield make
    for m in started:
        m.stop(kill=True)


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return REPO / "examples"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is missing (CI puts ../shared beside the clone)")
    return SHARED


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throw-away CA with broker, gateway and foreign certificates (``openssl``)."""
    return make_pki(tmp_path_factory.mktemp("pki"))
