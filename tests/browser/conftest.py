"""Fixtures of the page tests: one chromium per module, and a provisioned test city
(``tests.support.api.SITE_FILE``) served by ``parkbazaar api`` processes of their own,
shared by a module's tests (each test opens its own browser context)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.migrate import migrate_dsn
from tests.support.api import seed_city
from tests.support.browser import ARGS, CHROMIUM, api_process, in_thread, tile_server
from tests.support.database import scratch_database
from tests.support.npm import need_npm, npm_ci

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright; skipped (saying why) when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def city_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A migrated database of this module's own holding the test city."""
    database = scratch_database(pg_admin_dsn)
    dsn = in_thread(database.__enter__)  # Playwright may be running in this thread already
    try:
        in_thread(lambda: asyncio.run(migrate_dsn(dsn, "plain")))
        in_thread(lambda: asyncio.run(seed_city(dsn)))
        yield dsn
    finally:
        in_thread(lambda: database.__exit__(None, None, None))


@pytest.fixture(scope="module")
def city_api(city_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an API over the test city, no tile server configured."""
    with api_process(city_dsn, tmp_path_factory.mktemp("api") / "api.log") as base:
        yield base


@pytest.fixture(scope="module")
def tiled_api(city_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an API over the test city with ``api.tile_url`` at a local tile server."""
    with tile_server() as url, api_process(
            city_dsn, tmp_path_factory.mktemp("api") / "api.log", tile_url=url) as base:
        yield base


@pytest.fixture(scope="module")
def axe_source() -> str:
    """The text of axe-core's ``axe.min.js`` (pinned in package-lock.json, ``npm ci`` here)."""
    need_npm("the accessibility checks (axe-core)")
    npm_ci(HERE)
    return (HERE / "node_modules" / "axe-core" / "axe.min.js").read_text()
