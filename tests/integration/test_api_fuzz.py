"""schemathesis fuzzes every operation of the OpenAPI description (public, manager and admin,
with an admin token) against the API on a real database: no response may be a 5xx."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from ingest.migrate import migrate_dsn
from stack.embedded import free_port
from tests.integration.api_support import TENANT, app_for, seed_city, token
from tests.scratch import scratch_database

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

pytestmark = pytest.mark.slow
MAX_EXAMPLES = int(os.environ.get("PARKBAZAAR_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzz_server(pg_admin_dsn: str) -> Iterator[dict[str, Any]]:
    async def prepare(dsn: str) -> str:
        await migrate_dsn(dsn, "plain")
        await seed_city(dsn)
        return await token(dsn, TENANT, "admin")

    with scratch_database(pg_admin_dsn, "pbt_fuzz") as dsn:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app_for(dsn), host="127.0.0.1", port=port, log_level="error"))
        admin_token = asyncio.run(prepare(dsn))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield {"base": f"http://127.0.0.1:{port}", "token": admin_token}
        server.should_exit = True
        thread.join(10)


def test_no_server_errors(fuzz_server: dict[str, Any]) -> None:
    """Each operation in turn, MAX_EXAMPLES generated requests each (schemathesis' pytest
    plugin does not run under pytest 9, so the strategies are driven with hypothesis here)."""
    schema = schemathesis.openapi.from_url(fuzz_server["base"] + "/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_server['token']}"}
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/live"):  # endless streams
            continue

        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            case.call_and_validate(base_url=fuzz_server["base"], checks=[not_a_server_error],
                                   headers=headers, timeout=10)

        call()
        tested += 1
    assert tested >= 30
