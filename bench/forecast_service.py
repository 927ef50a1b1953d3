"""The forecasts as the service runs them: ingest's refit of a province and the API's
forecast read. ``python bench/forecast_service.py [--sites 300] [--tenants 84] [--days 56]``

Creates and drops a database of its own on the machine's PostgreSQL
(``PARKBAZAAR_DATABASE_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``),
migrates it and provisions ``--tenants`` tenants sharing ``--sites`` parking sites (one
space each: the live counts are not what is measured). Every site gets ``--days`` of
5-minute counts in ``site_counts_5m`` from a synthetic Friday-weekend city
(``occupancy.forecast.synthetic``), ending now. Then, in one run:

- ``refit``: one ``ingest.forecasting.run_forecasts`` as maintenance calls it (the counts
  phase has nothing to do but the last hour), wall seconds and the process's CPU seconds
  (the fits run in a worker thread of this process), the wall seconds of the fits alone
  (``parkbazaar_ingest_forecast_refit_seconds``), and the sites refitted;
- ``read miss``: ``GET /v1/sites/{tenant}/{site}/forecast`` called straight into the ASGI
  app (middlewares, route, query, predict, encoding; no HTTP parsing, no socket) with the
  response cache off, ``--reads`` times over the sites, median and p95 milliseconds;
- ``read hit``: the same with the cache on, after one read fills it: median microseconds;
- ``arrive_in miss``: ``GET /v1/sites?near=…&radius_m=100000&arrive_in=20`` (every site
  in the radius; the nearest ``MAX_ARRIVAL_SITES`` get a forecast), cache off, median
  milliseconds.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402

from dashboard_api.app import create_app  # noqa: E402
from dashboard_api.forecasts import MAX_ARRIVAL_SITES  # noqa: E402
from dashboard_api.provision import provision  # noqa: E402
from ingest.forecasting import run_forecasts  # noqa: E402
from ingest.migrate import migrate_dsn  # noqa: E402
from ingest.site_counts import STEP, boundary  # noqa: E402
from occupancy.config import Settings  # noqa: E402
from occupancy.forecast.synthetic import TEHRAN, make_city  # noqa: E402
from occupancy.sitefile import parse_site_file  # noqa: E402
from stack.embedded import dsn_with_database  # noqa: E402

ADMIN = os.environ.get("PARKBAZAAR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def site_files(tenants: int, sites: int) -> list[dict[str, Any]]:
    """Tenants t0…, their sites s0… spread over them, each site one space, ~1 km apart."""
    files: list[dict[str, Any]] = [{"tenant": {"id": f"t{k}", "name": f"T{k}"}, "sites": []}
                                   for k in range(tenants)]
    for i in range(sites):
        files[i % tenants]["sites"].append({
            "id": f"s{i}", "kind": "parking", "name": f"S{i}", "lat": 29.6 + 0.01 * (i % tenants),
            "lon": 52.5 + 0.01 * (i // tenants), "zones": [{"id": "z", "spaces": ["x"]}]})
    return files


async def seed(con: asyncpg.Connection, *, tenants: int, sites: int, days: int, now: datetime) -> int:
    for f in site_files(tenants, sites):
        await provision(con, parse_site_file(f))
    ids = {r["slug"]: r["id"] for r in await con.fetch("SELECT slug, id FROM sites")}
    start = (now - timedelta(days=days)).date()
    city = replace(TEHRAN, holidays=(), start=start, days=days, sites=sites, cadence_min=5, seed=7)
    rows: dict[tuple[int, datetime], tuple[Any, ...]] = {}
    last = boundary(now)
    for r in make_city(city):
        at = boundary(datetime.fromtimestamp(r.t, UTC))
        if at <= last:
            site = ids[f"s{int(r.site.removeprefix('site-'))}"]
            rows[site, at] = (site, at, r.free, r.capacity - r.free, r.capacity)
    await con.copy_records_to_table("site_counts_5m", records=list(rows.values()),
                                    columns=["site_id", "at", "free", "occupied", "total"])
    await con.executemany("INSERT INTO site_counts_horizon VALUES ($1, $2)",
                          [(i, last) for i in ids.values()])
    return len(rows)


async def timed_reads(app: Any, paths: list[str], reads: int) -> list[float]:
    """Seconds of each GET called straight into the ASGI app (as bench/api_hotpath.py does:
    the middlewares, the cache front, the route; no HTTP parsing, no socket)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    out = []
    async with app.router.lifespan_context(app):
        for i in range(reads):
            path, _, query = paths[i % len(paths)].partition("?")
            scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
                     "query_string": query.encode(), "headers": [(b"host", b"bench")],
                     "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "scheme": "http",
                     "http_version": "1.1", "root_path": "", "asgi": {"version": "3.0"}}
            sent.clear()
            started = time.perf_counter()
            await app(scope, receive, send)
            out.append(time.perf_counter() - started)
            assert sent[0]["status"] == 200, sent
    return out


def app_of(dsn: str, ttl: float) -> Any:
    return create_app(Settings(database_url=dsn, api={"cache_ttl_s": ttl, "rate_limit_per_s": 0}))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    name = f"pbbench_fc_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = dsn_with_database(ADMIN, name)
    try:
        await migrate_dsn(dsn, "plain")
        now = datetime.now(UTC)
        con = await asyncpg.connect(dsn)
        rows = await seed(con, tenants=args.tenants, sites=args.sites, days=args.days, now=now)
        print(f"seeded {args.sites} sites of {args.tenants} tenants: {rows} rows of 5-minute counts")
        wall, cpu = time.perf_counter(), time.process_time()
        report = await run_forecasts(con, now=now + STEP / 2, history_days=args.days, refit_s=86400,
                                     budget_s=3600)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        fitting = REGISTRY.get_sample_value("parkbazaar_ingest_forecast_refit_seconds_sum") or 0.0
        methods = await con.fetch("SELECT method, count(*) FROM site_forecasts GROUP BY 1 ORDER BY 1")
        await con.close()
        print(f"refit: {report.refitted} sites in {wall:.1f} s wall, {cpu:.1f} s CPU, of which fitting "
              f"{fitting:.1f} s wall ({dict(methods)})")
        paths = [f"/v1/sites/t{i % args.tenants}/s{i}/forecast" for i in range(args.sites)]
        miss = await timed_reads(app_of(dsn, 0), paths, args.reads)
        hit = (await timed_reads(app_of(dsn, 60), paths[:1], args.reads))[1:]
        near = "/v1/sites?near=29.6,52.5&radius_m=100000&arrive_in=20"
        around = await timed_reads(app_of(dsn, 0), [near], 20)
        n_near = min(args.sites, MAX_ARRIVAL_SITES)
        out = {"sites": args.sites, "tenants": args.tenants, "days": args.days, "count_rows": rows,
               "refit_wall_s": round(wall, 2), "refit_cpu_s": round(cpu, 2),
               "fit_wall_s": round(fitting, 2), "refitted": report.refitted,
               "read_miss_median_ms": round(1000 * statistics.median(miss), 2),
               "read_miss_p95_ms": round(1000 * statistics.quantiles(miss, n=20)[-1], 2),
               "read_hit_median_us": round(1e6 * statistics.median(hit), 1),
               "arrive_in_miss_median_ms": round(1000 * statistics.median(around), 1),
               "arrive_in_sites": n_near}
        print(f"read: miss median {out['read_miss_median_ms']} ms (p95 {out['read_miss_p95_ms']}), "
              f"hit median {out['read_hit_median_us']} µs; near+arrive_in ({n_near} sites) "
              f"miss median {out['arrive_in_miss_median_ms']} ms")
        return out
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--tenants", type=int, default=84)
    parser.add_argument("--days", type=int, default=56)
    parser.add_argument("--reads", type=int, default=300)
    print(json.dumps(asyncio.run(main(parser.parse_args())) | {"date": date.today().isoformat()}))
