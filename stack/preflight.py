"""Before a scenario runs against a deployment (``simulate SCENARIO --api URL``): what cannot work.

How this works: against a running API the scenario starts nothing of its own, so
it needs that deployment's database (to verify what was stored) and broker (to
publish as its gateways) configured, and all three answering. ``unconfigured``
(pure) names the settings that are missing; ``check_deployment`` then asks each
service once, within a few seconds: the API's ``/readyz``, the database (and its
schema), the broker's CONNACK for the configured login. Every problem is a line
naming the URL (passwords hidden) and the cause; the caller refuses the run
with all of them instead of publishing into a chain that cannot store anything.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid

import asyncpg

from occupancy.config import Settings
from occupancy.mqtt_client import ClientSpec, build_client, connect
from stack import SchemaMissing
from stack.db import connected, require_schema
from stack.running import public_url

ANSWER_S = 5.0
HOW_TO_CONFIGURE = ("set PARKBAZAAR_DATABASE_URL and PARKBAZAAR_MQTT_URL (or database_url and mqtt_url "
                    "in --config) to that deployment's, or leave out --api to run the chain here")


def unconfigured(settings: Settings, api: str) -> list[str]:
    """The settings ``--api`` needs that are not configured (pure)."""
    missing = [name for name, value in (("database_url", settings.database_url),
                                        ("mqtt_url", settings.mqtt_url)) if not value]
    if not missing:
        return []
    return [f"--api {api} verifies a deployment's chain, but no {' and no '.join(missing)} is "
            f"configured: {HOW_TO_CONFIGURE}"]


async def check_deployment(settings: Settings, api: str) -> list[str]:
    """Every reason the deployment at ``api`` cannot run a scenario now (empty: it can)."""
    problems = unconfigured(settings, api)
    if problems:
        return problems
    found = await asyncio.gather(asyncio.to_thread(api_problem, api),
                                 database_problem(settings.dsn),
                                 asyncio.to_thread(broker_problem, settings))
    return [p for p in found if p]


def api_problem(api: str) -> str | None:
    """Why ``GET {api}/readyz`` is not a 200 within ``ANSWER_S``; None when it is."""
    url = f"{api.rstrip('/')}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=ANSWER_S) as r:
            return None if r.status == 200 else f"the API at {url} answered {r.status}"
    except urllib.error.HTTPError as exc:
        return f"the API at {url} answered {exc.code}: {_reason(exc)}"
    except (OSError, ValueError) as exc:
        return f"the API at {url} did not answer: {getattr(exc, 'reason', None) or exc}"


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        return exc.reason
    if not isinstance(body, dict):
        return exc.reason
    return str(body.get("reason") or body.get("detail") or exc.reason)


async def database_problem(dsn: str) -> str | None:
    """Why the database at ``dsn`` cannot be used (unreachable, not migrated); None when it can."""
    try:
        async with asyncio.timeout(ANSWER_S):
            async with connected(dsn) as con:
                await require_schema(con, dsn)
    except SchemaMissing as exc:
        return str(exc)
    except TimeoutError:
        return f"the database at {public_url(dsn)} did not answer within {ANSWER_S:g} s"
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"the database at {public_url(dsn)} cannot be used: {exc}"
    return None


def broker_problem(settings: Settings) -> str | None:
    """Why the broker refuses a connection with the configured login; None when it accepts."""
    url = settings.mqtt
    where = public_url(settings.mqtt_url or "")
    spec = ClientSpec(url, f"parkbazaar-preflight-{uuid.uuid4().hex[:8]}", protocol=url.protocol)
    client = build_client(spec)
    answers: list[str] = []
    client.on_connect = lambda _c, _u, _f, rc, _p=None: answers.append("" if not rc.is_failure else str(rc))
    try:
        connect(client, spec)
    except (OSError, ValueError) as exc:
        return f"the broker at {where} did not answer: {exc}"
    deadline = time.monotonic() + ANSWER_S
    while not answers and time.monotonic() < deadline:
        client.loop(0.1)
    client.disconnect()
    if not answers:
        return f"the broker at {where} did not answer CONNECT within {ANSWER_S:g} s"
    return f"the broker at {where} refused the login: {answers[0]}" if answers[0] else None
