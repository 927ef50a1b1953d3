"""Benchmark of the dashboard API: ``python bench/api.py [--duration 10] [--clients 1000]``.

In one run, against a database of its own on the machine's PostgreSQL
(``PARKBAZAAR_DATABASE_URL`` or 127.0.0.1:5432) provisioned with the example
tenant and every space observed:

1. three uvicorn servers (one worker each, subprocesses on 127.0.0.1): the
   API as configured by default (response cache on), the API with the cache
   off, and a bare FastAPI app whose one endpoint returns a hello-world JSON
   object at ``/bench/hello`` (the framework's bound on this machine);
2. ``wrk -t1 -c64`` (or, without wrk, an asyncio/httpx load generator) on
   ``/bench/hello`` and on ``/v1/sites/shiraz/central-lot``: req/s and p99;
   then the site on the cache-less server (every request a query);
3. the site again while the bench commits ``--change-rate`` state changes a
   second with their NOTIFY (as ingest does): each makes every cached answer
   stale, so this is the cache's worst steady case;
4. the site again, on the API as deployed and on the cache-less server, while
   ``--history-clients`` (200) clients of one address read a week of the lot's
   history at a 5-minute step (2,016 points over ~130,000 events) as fast as
   they are answered, honouring ``Retry-After``: the bulkhead lets three run at
   once, so the site reads keep their connections, and identical reads share
   a query (``history_load_*`` and ``uncached_history_load_*``: the site's
   req/s, p99 and errors, and the history answers by status with their p50);
   then on the API as deployed with every reader from a loopback address of
   its own and asking a week of its own (``from`` a minute apart), so neither
   the per-client cap nor shared queries help: the bulkhead alone
   (``spread_history_load_*``);
5. SSE fan-out: ``--clients`` streams of ``/v1/sites/shiraz/fruit-market/live``;
   the bench commits a state change and its NOTIFY (as ingest does) every
   200 ms and measures commit → delivery at every client.

One wrk thread, pinned to the last CPU, and the servers pinned to the first
(``sched_setaffinity``; with one CPU nothing is pinned): on this two-core
machine the load generator then has a core of its own and never preempts the
server it measures, whose p99 would otherwise show the scheduler's time
slices. PostgreSQL is not pinned.

The last line is one JSON object: ``site_req_per_s``, ``hello_req_per_s``,
``ratio``, ``p99_ms``, ``hello_p99_ms``, ``changing_req_per_s``,
``changing_p99_ms``, ``uncached_req_per_s``,
``uncached_p99_ms``, ``history_load_p99_ms``, ``uncached_history_load_p99_ms``,
``spread_history_load_p99_ms``, ``sse_clients``, ``sse_p99_ms``, …
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SITE_URL = "/v1/sites/shiraz/central-lot"
HELLO_URL = "/bench/hello"
LIVE_URL = "/v1/sites/shiraz/fruit-market/live"
HISTORY_URL = "/v1/sites/shiraz/central-lot/history?step=5m&from={start}"


WRK_THREADS, CONNECTIONS = 1, 64
NON_2XX: dict[str, int] = {}  # answers other than 2xx/3xx that wrk counted, by URL (its last run)
CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS, LOAD_CPUS = ({CPUS[0]}, {CPUS[-1]}) if len(CPUS) > 1 else (set(CPUS), set(CPUS))


def serve(dsn: str, port: int, cache_ttl_s: float, extra: str) -> None:
    """The API (``dsn`` given) or the hello-world app, on uvicorn (run in the subprocess)."""
    import uvicorn
    from fastapi import FastAPI

    from dashboard_api.app import create_app
    from occupancy.config import Settings

    os.sched_setaffinity(0, SERVER_CPUS)
    if dsn:
        api = {"rate_limit_per_s": 0, "cache_ttl_s": cache_ttl_s, **json.loads(extra or "{}")}
        app = create_app(Settings(database_url=dsn, log_level="WARNING", api=api))
    else:
        app = FastAPI()

        @app.get(HELLO_URL)
        async def hello() -> dict[str, str]:
            return {"hello": "world"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def prepare(admin_dsn: str) -> str:
    """A database of the bench's own: migrated, the example provisioned, every space observed."""
    from occupancy.config import Settings
    from occupancy.sitefile import read_site_file
    from stack.db import connected, own_database
    from stack.local import StackSpec, local_stack

    dsn = await own_database(admin_dsn, f"pb_bench_{uuid.uuid4().hex[:8]}", fresh=True)
    site_file = read_site_file(REPO / "parkbazaar" / "examples" / "shiraz.yaml")
    # the stack migrates and provisions; the API servers run as processes of their own
    spec = StackSpec(Path(tempfile.gettempdir()), [site_file], flavor="plain", broker="none",
                     ingest=False, api=False)
    async with local_stack(Settings(database_url=dsn), spec), connected(dsn) as con:
        await con.execute(
            """INSERT INTO space_state (space_id, state, observed_at, source, gateway_id, seq, changed_at)
               SELECT sp.id, CASE WHEN sp.id % 3 = 0 THEN 'free' ELSE 'occupied' END, now(), 'sensor',
                      g.id, sp.id, now()
               FROM spaces sp JOIN gateway_spaces gs ON gs.space_id = sp.id
               JOIN gateways g ON g.id = gs.gateway_id"""
        )
        await _week_of_events(con, "central-lot")
    return dsn


async def _week_of_events(con: asyncpg.Connection, site: str) -> None:
    """An event per space of ``site`` every ten minutes over the last week (the history reads)."""
    await con.execute("SELECT ensure_event_partitions(current_date - 8, current_date + 1)")
    await con.execute(
        """INSERT INTO occupancy_events (observed_at, gateway_id, seq, space_id, state, source)
           SELECT t, gs.gateway_id, 1000000 + row_number() OVER (), sp.id,
                  CASE WHEN (extract(epoch FROM t)::bigint / 600 + sp.id) % 3 = 0 THEN 'free'
                       ELSE 'occupied' END, 'sensor'
           FROM spaces sp JOIN sites si ON si.id = sp.site_id
           JOIN gateway_spaces gs ON gs.space_id = sp.id,
           generate_series(now() - interval '7 days', now(), interval '10 minutes') AS t
           WHERE si.slug = $1""", site)


async def history_load(urls: list[str], stop: asyncio.Event, *, spread: bool = False) -> dict[str, float]:
    """A connection per URL of ``urls`` reading it back to back until ``stop``, each waiting
    ``Retry-After`` after a 503 as a polite client does; answers by status and their p50.
    ``spread``: each reader from a loopback address of its own (``reader_address``)."""
    import httpx

    statuses: dict[int, int] = {}
    latencies: list[float] = []

    async def reader(client: httpx.AsyncClient, url: str) -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                r = await client.get(url)
            except httpx.TransportError:  # a keep-alive connection closed under us: counted
                statuses[0] = statuses.get(0, 0) + 1
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 503:
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))

    async with contextlib.AsyncExitStack() as stack:
        shared = await stack.enter_async_context(
            httpx.AsyncClient(limits=httpx.Limits(max_connections=len(urls)), timeout=60))
        clients = [await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(local_address=reader_address(i)), timeout=60))
            if spread else shared for i in range(len(urls))]
        await asyncio.gather(*(reader(c, u) for c, u in zip(clients, urls, strict=True)))
    return {"history_clients": len(urls), "history_200": statuses.get(200, 0),
            "history_503": statuses.get(503, 0),
            "history_other": sum(n for s, n in statuses.items() if s not in (0, 200, 503)),
            "history_transport_errors": statuses.get(0, 0),
            "history_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else 0.0}


def reader_address(i: int) -> str:
    """The loopback source address of spread history reader ``i`` (127.0.1.1, …): its
    requests still go to 127.0.0.1, but the API sees each reader as a client of its own."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def history_urls(base: str, clients: int, spread: bool) -> list[str]:
    """A week at a 5-minute step: one URL for every reader, or (``spread``) one per reader,
    their ``from`` a minute apart, so no two readers ask the same read."""
    week_ago = datetime.now(UTC) - timedelta(days=7)
    return [base + HISTORY_URL.format(
        start=(week_ago - timedelta(minutes=i if spread else 0)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for i in range(clients)]


async def site_while_history(base: str, duration: int, clients: int, label: str, *,
                             spread: bool = False) -> dict[str, float]:
    """``load(site)`` on ``base`` while ``clients`` history readers run against it; the
    site's figures are ``{label}_req_per_s``, ``{label}_p99_ms``, ``{label}_site_errors``."""
    stop = asyncio.Event()
    readers = asyncio.create_task(history_load(history_urls(base, clients, spread), stop, spread=spread))
    await asyncio.sleep(2)  # every reader has asked once: the bulkhead is full, the rest wait
    try:
        rps, p99 = await load(base + SITE_URL, duration)
    finally:
        stop.set()
    history = {f"{label}_{k}": v for k, v in (await readers).items()}
    return {f"{label}_req_per_s": round(rps), f"{label}_p99_ms": round(p99, 2),
            f"{label}_site_errors": NON_2XX.get(base + SITE_URL, 0), **history}


async def drop(admin_dsn: str, dsn: str) -> None:
    from stack.db import connected

    async with connected(admin_dsn) as con:
        await con.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')


def wrk(url: str, duration: int) -> tuple[float, float]:
    out = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", url],
        capture_output=True, text=True, check=True, preexec_fn=lambda: os.sched_setaffinity(0, LOAD_CPUS),
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert m, out
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    NON_2XX[url] = int(errors.group(1)) if errors else 0
    return rps, p99


async def httpx_load(url: str, duration: int, connections: int = CONNECTIONS) -> tuple[float, float]:
    import httpx

    latencies: list[float] = []
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                (await client.get(url)).raise_for_status()
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies) / duration, statistics.quantiles(latencies, n=100)[98] * 1000


async def load(url: str, duration: int) -> tuple[float, float]:
    if shutil.which("wrk"):
        return await asyncio.to_thread(wrk, url, duration)
    return await httpx_load(url, duration)


class SseClient:
    """A raw SSE reader: records when each (space, observed_at) first arrives."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.ready = asyncio.Event()

    async def run(self, port: int, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {LIVE_URL} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        buf = b""
        try:
            while not stop.is_set():
                chunk = await reader.read(65536)
                if not chunk:
                    return
                now = time.perf_counter()
                buf += chunk
                if b"event: snapshot" in buf:
                    self.ready.set()
                *messages, buf = buf.split(b"\n\n")
                for m in messages:
                    if b"event: space" in m:
                        key = re.search(rb'"space":"([^"]+)".*?"observed_at":"([^"]+)"', m)
                        if key:
                            self.arrivals.setdefault(f"{key.group(1).decode()}@{key.group(2).decode()}", now)
        finally:
            writer.close()


async def site_spaces(con: asyncpg.Connection, site: str) -> list[asyncpg.Record]:
    return await con.fetch("""SELECT sp.id, sp.slug, sp.site_id
                               FROM spaces sp JOIN sites si ON si.id = sp.site_id
                               WHERE si.slug = $1 ORDER BY sp.slug""", site)


async def commit_change(con: asyncpg.Connection, space: asyncpg.Record, state: str) -> str:
    """A new state of one space and its NOTIFY in one transaction, as ingest commits them;
    returns ``slug@observed_at``, the key the SSE clients see."""
    at = datetime.now(UTC)
    change = {"space_id": space["id"], "site_id": space["site_id"], "state": state,
              "observed_at": at.isoformat()}
    async with con.transaction():
        await con.execute(
            "UPDATE space_state SET state = $2, observed_at = $3, seq = seq + 1000 WHERE space_id = $1",
            space["id"], state, at,
        )
        payload = json.dumps({"v": 1, "changes": [change]})
        await con.execute("SELECT pg_notify('parkbazaar_changes', $1)", payload)
    return f"{space['slug']}@{at.isoformat().replace('+00:00', 'Z')}"


async def load_while_changing(dsn: str, url: str, duration: int, per_s: float) -> tuple[float, float, int]:
    """``load(url)`` while the site's spaces change ``per_s`` times a second (each change
    makes the API's cached answers stale); returns req/s, p99 and the changes made."""
    con = await asyncpg.connect(dsn)
    spaces = await site_spaces(con, "central-lot")
    made = 0

    async def change() -> None:
        nonlocal made
        while True:
            await commit_change(con, spaces[made % len(spaces)], "free" if made % 2 else "occupied")
            made += 1
            await asyncio.sleep(1 / per_s)

    changer = asyncio.create_task(change())
    try:
        rps, p99 = await load(url, duration)
    finally:
        changer.cancel()
        await asyncio.gather(changer, return_exceptions=True)
        await con.close()
    return rps, p99, made


async def sse_fanout(dsn: str, port: int, clients: int, changes: int = 25) -> dict[str, float]:
    stop = asyncio.Event()
    readers = [SseClient() for _ in range(clients)]
    tasks = []
    for i, c in enumerate(readers):
        tasks.append(asyncio.create_task(c.run(port, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in readers)), 60)
    con = await asyncpg.connect(dsn)
    commits: dict[str, float] = {}
    spaces = await site_spaces(con, "fruit-market")
    for k in range(changes):
        key = await commit_change(con, spaces[k % len(spaces)], "free" if k % 2 else "occupied")
        commits[key] = time.perf_counter()
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    stop.set()
    await con.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    delays, missing = [], 0
    for c in readers:
        for key, committed in commits.items():
            if key in c.arrivals:
                delays.append((c.arrivals[key] - committed) * 1000)
            else:
                missing += 1
    return {
        "sse_clients": clients,
        "sse_changes": changes,
        "sse_deliveries": len(delays),
        "sse_missing": missing,
        "sse_p50_ms": round(statistics.median(delays), 1),
        "sse_p99_ms": round(statistics.quantiles(delays, n=100)[98], 1),
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    from stack.embedded import free_port, wait_port

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    admin_dsn = os.environ.get("PARKBAZAAR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    dsn = await prepare(admin_dsn)
    port, uncached_port, hello_port = free_port(), free_port(), free_port()
    servers = [
        subprocess.Popen(  # noqa: ASYNC220 (the servers run beside the event loop)
            [sys.executable, __file__, "--serve", "--dsn", d, "--port", str(p), "--cache-ttl", ttl,
             "--api", args.api]
        )
        for d, p, ttl in ((dsn, port, "1"), (dsn, uncached_port, "0"), ("", hello_port, "0"))
    ]
    try:
        for p in (port, uncached_port, hello_port):
            await asyncio.to_thread(wait_port, "127.0.0.1", p)
        base, uncached = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{uncached_port}"
        await load(f"http://127.0.0.1:{hello_port}{HELLO_URL}", 2)  # warm up
        hello_rps, hello_p99 = await load(f"http://127.0.0.1:{hello_port}{HELLO_URL}", args.duration)
        await load(base + SITE_URL, 2)
        site_rps, site_p99 = await load(base + SITE_URL, args.duration)
        print(
            f"hello: {hello_rps:.0f} req/s, p99 {hello_p99:.1f} ms; "
            f"site: {site_rps:.0f} req/s, p99 {site_p99:.1f} ms",
            flush=True,
        )
        changing_rps, changing_p99, changes = await load_while_changing(
            dsn, base + SITE_URL, args.duration, args.change_rate)
        print(f"site, {changes} changes committed meanwhile: {changing_rps:.0f} req/s, "
              f"p99 {changing_p99:.1f} ms", flush=True)
        await load(uncached + SITE_URL, 2)  # warm up
        uncached_rps, uncached_p99 = await load(uncached + SITE_URL, args.duration)
        print(f"site, no response cache: {uncached_rps:.0f} req/s, p99 {uncached_p99:.1f} ms", flush=True)
        busy = await site_while_history(base, args.duration, args.history_clients, "history_load")
        print(f"site, {args.history_clients} history readers: {busy}", flush=True)
        busy |= await site_while_history(uncached, args.duration, args.history_clients,
                                         "uncached_history_load")
        print(f"site, no response cache, {args.history_clients} history readers: {busy}", flush=True)
        spread = await site_while_history(base, args.duration, args.history_clients,
                                          "spread_history_load", spread=True)
        print(f"site, {args.history_clients} history readers of their own address and read: {spread}",
              flush=True)
        busy |= spread
        sse = await sse_fanout(dsn, port, args.clients)
        print(f"sse: {sse}", flush=True)
    finally:
        for server in servers:
            server.terminate()
            server.wait(20)
        await drop(admin_dsn, dsn)
    return {
        "site_req_per_s": round(site_rps),
        "hello_req_per_s": round(hello_rps),
        "ratio": round(site_rps / hello_rps, 3),
        "p99_ms": round(site_p99, 2),
        "hello_p99_ms": round(hello_p99, 2),
        "changing_req_per_s": round(changing_rps),
        "changing_p99_ms": round(changing_p99, 2),
        "changes_per_s": round(changes / args.duration, 1),
        "uncached_req_per_s": round(uncached_rps),
        "uncached_p99_ms": round(uncached_p99, 2),
        **busy,
        "connections": CONNECTIONS,
        "wrk_threads": WRK_THREADS,
        "load_tool": "wrk" if shutil.which("wrk") else "httpx",
        **sse,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load test")
    parser.add_argument("--clients", type=int, default=1000, help="SSE clients")
    parser.add_argument("--history-clients", type=int, default=200,
                        help="concurrent history readers during the site-under-history-load phase")
    parser.add_argument("--change-rate", type=float, default=20.0,
                        help="changes a second committed during the site-under-changes phase")
    parser.add_argument("--api", default="", metavar="JSON",
                        help="more api settings of the API servers, e.g. '{\"expensive_concurrency\": 1}'")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cache-ttl", type=float, default=1.0, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve:
        serve(ns.dsn, ns.port, ns.cache_ttl, ns.api)
    else:
        print(json.dumps(asyncio.run(main(ns))))
