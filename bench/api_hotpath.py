"""CPU of one cached hot read through the API's whole middleware stack, without a server
or a socket: ``python bench/api_hotpath.py [REPO]``.

Builds the app of ``REPO`` (default: this checkout; another checkout compares commits)
on a scratch database of the machine's PostgreSQL, fills the response cache with one
``GET /v1/sites/testcity/lot-a``, then calls the ASGI app directly 5,000 times, seven
times over, and prints the median microseconds a call. What it measures is what every
cached hit pays in Python before uvicorn writes the bytes: the middlewares and the cache
front, not HTTP parsing.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
REPO = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE
sys.path[:0] = [str(REPO), str(HERE)]
CALLS, RUNS = 5000, 7
PATH = "/v1/sites/testcity/lot-a"


async def measure(dsn: str) -> list[float]:
    from dashboard_api.app import create_app
    from ingest.migrate import migrate_dsn
    from occupancy.config import Settings
    from tests.support.api import seed_city

    await migrate_dsn(dsn, "plain")
    await seed_city(dsn)
    app = create_app(Settings(database_url=dsn, api={"cache_ttl_s": 60, "rate_limit_per_s": 1000,
                                                      "rate_limit_burst": 10**9}))
    scope = {"type": "http", "method": "GET", "path": PATH, "raw_path": PATH.encode(), "query_string": b"",
             "headers": [(b"host", b"bench"), (b"user-agent", b"wrk")], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 80), "scheme": "http", "http_version": "1.1", "root_path": "",
             "asgi": {"version": "3.0"}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    runs = []
    async with app.router.lifespan_context(app):
        await app(dict(scope), receive, send)  # fills the cache
        for _ in range(RUNS):
            t0 = time.perf_counter()
            for _ in range(CALLS):
                sent.clear()
                await app(dict(scope), receive, send)
            runs.append((time.perf_counter() - t0) / CALLS * 1e6)
        assert sent[0]["status"] == 200, sent[0]
    return runs


def main() -> None:
    from tests.support.database import scratch_database

    admin = os.environ.get("PARKBAZAAR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with scratch_database(admin, "pb_hot") as dsn:
        runs = asyncio.run(measure(dsn))
    median = statistics.median(runs)
    print(f"{REPO}: median {median:.1f} µs a cached hit (runs: {[round(r, 1) for r in runs]})")


if __name__ == "__main__":
    main()
