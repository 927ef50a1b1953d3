"""schemathesis fuzzes every operation of the OpenAPI description (public, manager and admin,
with an admin token) against the API on a real database: no response may be a 5xx, and
every response must be documented — its status, its content type and its body's schema."""

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
from tests.support.api import TENANT, app_for, seed_city, token
from tests.support.database import scratch_database
from tests.support.waiting import wait_until_sync

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow
MAX_EXAMPLES = int(os.environ.get("PARKBAZAAR_FUZZ_EXAMPLES", "30"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BUDGET_S = 90.0  # the whole run; the operations share it, so a slow machine runs fewer cases


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
        wait_until_sync(lambda: server.started, 20, "uvicorn started")
        yield {"base": f"http://127.0.0.1:{port}", "token": admin_token}
        server.should_exit = True
        thread.join(10)


# Real ids of the seeded city: generated ids almost never name a row, these reach the writes.
REAL = {"tenant": TENANT, "site": "market", "zone": "hall", "space": "stall-002", "gateway": "gw-1",
        "device": "s-a1", "entity_id": f"urn:ngsi-ld:OffStreetParking:{TENANT}:lot-a",
        "token_id": "1", "version": "1"}  # token 1 is the admin token itself: revoking it is a documented 409


def _strategy(operation: Any) -> Any:
    """Valid requests, invalid ones (schemathesis' negative mode), and valid ones on real rows."""
    names = [p.name for p in operation.path_parameters]
    real = operation.as_strategy(path_parameters={n: REAL[n] for n in names}) if names else None
    both = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
    return both | real if real is not None else both


def _fuzz(operation: Any, stop: float, base: str, headers: dict[str, str]) -> int:
    """Up to MAX_EXAMPLES cases of one operation until ``stop``; the number run."""
    cases = 0

    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              database=None, derandomize=True)
    @given(case=_strategy(operation))
    def call(case: Any) -> None:
        nonlocal cases
        if time.monotonic() < stop:
            cases += 1
            case.call_and_validate(base_url=base, checks=CHECKS, headers=headers, timeout=10)

    call()
    return cases


def test_every_operation_conforms_and_never_fails(fuzz_server: dict[str, Any]) -> None:
    """Each operation in turn, up to MAX_EXAMPLES generated requests each within BUDGET_S in all
    (schemathesis' pytest plugin does not run under pytest 9, so the strategies are driven with
    hypothesis here). The failures of every operation are collected, then reported together."""
    schema = schemathesis.openapi.from_url(fuzz_server["base"] + "/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_server['token']}"}
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if not op.path.endswith("/live")]  # endless streams
    deadline = time.monotonic() + BUDGET_S
    cases, failures = 0, []
    for k, operation in enumerate(operations):
        stop = time.monotonic() + max((deadline - time.monotonic()) / (len(operations) - k), 0.5)
        try:
            cases += _fuzz(operation, stop, fuzz_server["base"], headers)
        except (Exception, BaseExceptionGroup) as exc:  # noted, and the next operation fuzzed
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    print(f"schemathesis: {len(operations)} operations, {cases} cases, {len(failures)} failing operations")
    assert len(operations) >= 30
    assert not failures, "\n\n".join(failures)
