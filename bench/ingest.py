"""Ingest end to end: gateways → broker → ``parkbazaar ingest`` → PostgreSQL, with the
machine's own bounds measured in the same run and every figure printed as a ratio.

Usage (repo root, venv active; about 2–3 minutes)::

    python bench/ingest.py [--gateways 40] [--batched-events 500000] [--single-events 60000]
                           [--freshness-seconds 25] [--rate 1000] [--live] [--profile DIR]
                           [--phases …] [--ingest-cmd CMD]
    python bench/ingest.py --soak 600        # RSS flatness over 10 minutes at --rate

Services: the machine's PostgreSQL (``PARKBAZAAR_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``), in which the bench creates and
drops a database of its own; a Mosquitto of its own with raised queue limits
(``stack.embedded.Mosquitto``) unless ``PARKBAZAAR_MQTT_URL`` names one — the
machine's broker keeps the stock ``max_queued_messages 1000`` and would drop the
backlog. Ingest runs as ``python -m parkbazaar ingest`` subprocesses.

How it measures:

- **bounds**: ``../shared/bench/limits_db.py`` and ``limits_mqtt.py`` (batch 1 and
  50) as subprocesses against the same PostgreSQL and broker, before any load.
- **drain** (``events_per_s_batched``, ``events_per_s_single``): ingest's
  persistent session is created (ingest started once and stopped), the whole
  load is published while ingest is down (the broker queues it in the session;
  every PUBACK is checked for "no matching subscribers"), then ingest is started
  and the bench polls the committed rows (per gateway, the highest committed
  ``seq`` through the primary key — cheap enough to poll every 50 ms; the end is
  confirmed by ``count(*)``). The headline rate runs from the first poll that
  sees committed rows to the poll that sees all N: rows committed in between
  divided by the time in between (it excludes process start-up, which is
  reported separately as ``*_from_start``).
- **freshness**: a paced publisher sends one event a message at ``--rate``
  events/s with ``at`` = the wall clock at publish, while ingest runs. The bench
  LISTENs on ``parkbazaar_changes``: ingest's ``NOTIFY`` is delivered at commit,
  and carries each changed space's ``observed_at`` (the event's ``at``), so
  *notification time − at* is the time from observation to a committed,
  visible state (it includes the notification's local delivery, well under a
  millisecond, so it errs high; ``at`` is truncated to milliseconds). The bays
  are visited in turn, so nearly every event is its space's newest in its batch
  and gets notified. ``received_at − at`` (transaction start, a lower bound) is
  reported beside it.
- **RSS**: ``psutil`` samples the ingest process every 0.25 s through every
  phase; peak, end, and the growth over the steady freshness phase.
- **CPU**: per drain, the cores used by ingest, by the PostgreSQL backends of the
  bench's database and by the bench's broker, and their CPU microseconds per
  event — the figure that still means something when other work shares the
  machine (the rate does not). Mean batch size and commit time come from
  ingest's own Prometheus metrics.

Options worth knowing: ``--phases bounds,batched,single,live,freshness`` runs a
subset; ``--profile DIR`` attaches ``py-spy record -f raw`` to every ingest
process (summarise with ``python bench/_profile.py DIR/batched.txt``);
``--ingest-cmd CMD`` runs a variant of ingest in place of ``python -m parkbazaar
ingest``; ``PARKBAZAAR_INGEST__*`` variables reach the ingest processes.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# this file is named like the package it measures: keep bench/ off the front of the path
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import asyncpg  # noqa: E402

from occupancy.config import MqttUrl, Settings  # noqa: E402
from stack.db import connected, own_database  # noqa: E402
from stack.embedded import Mosquitto, dsn_with_database, free_port  # noqa: E402
from stack.local import StackSpec, local_stack  # noqa: E402

sys.path.append(str(_HERE))  # the helpers below, after the real packages

from _bounds import db_bound, mqtt_bound  # noqa: E402
from _load import Backlog, Fleet, publish_backlog, publish_paced  # noqa: E402
from _procs import CpuProbe, IngestProcess, RssSampler, percentile, scrape_metrics  # noqa: E402

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PUBLISHERS = 2


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    """One run: services, the fleet, one ingest session, and the RSS sampler."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.admin_dsn = os.environ.get("PARKBAZAAR_DATABASE_URL", DEFAULT_DSN)
        self.db_name = f"pb_bench_ingest_{os.getpid()}"
        self.dsn = dsn_with_database(self.admin_dsn, self.db_name)
        self.broker: Mosquitto | None = None
        url = os.environ.get("PARKBAZAAR_MQTT_URL")
        if url is None:
            self.broker = Mosquitto(tmp / "mosquitto")
            url = self.broker.url
        self.mqtt_url = url
        self.mqtt = MqttUrl.parse(url)
        self.fleet = Fleet(args.gateways, args.spaces, f"bench{os.getpid()}/v1")
        self.next_seq = 1  # every phase continues each gateway's seq
        self.rss = RssSampler()
        self.con: asyncpg.Connection | None = None
        self.gateway_ids: list[int] = []

    # --- services -------------------------------------------------------------------

    async def setup(self) -> None:
        if self.broker is not None:
            self.broker.start()
            log(f"own mosquitto on 127.0.0.1:{self.broker.port} (max_queued_messages raised)")
        await own_database(self.admin_dsn, self.db_name, fresh=True)
        # the stack migrates and provisions; ingest runs as processes of its own
        spec = StackSpec(self.tmp, [self.fleet.site_file()], broker="none", ingest=False, api=False)
        async with local_stack(Settings(database_url=self.dsn), spec):
            pass
        self.con = await asyncpg.connect(self.dsn)
        rows = await self.con.fetch(
            "SELECT g.id FROM gateways g JOIN tenants t ON t.id = g.tenant_id "
            "WHERE t.slug = 'bench' ORDER BY g.slug")
        self.gateway_ids = [r["id"] for r in rows]
        log(f"database {self.db_name}: migrated, {self.args.gateways} gateways × "
            f"{self.args.spaces} bays provisioned")

    async def teardown(self) -> None:
        self.rss.stop()
        if self.con is not None:
            await self.con.close()
        async with connected(self.admin_dsn) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        if self.broker is not None:
            self.broker.stop(kill=True)

    def ingest(self, phase: str) -> IngestProcess:
        port = free_port()
        env = {**os.environ, "PARKBAZAAR_DATABASE_URL": self.dsn,
               "PARKBAZAAR_MQTT_URL": self.mqtt_url,
               "PARKBAZAAR_TOPIC_PREFIX": self.fleet.prefix,
               "PARKBAZAAR_INGEST__CLIENT_ID": f"bench-ingest-{os.getpid()}",
               "PARKBAZAAR_INGEST__METRICS_PORT": str(port)}
        env.pop("PARKBAZAAR_CONFIG", None)
        profile = None
        if self.args.profile and phase != "prime":
            profile = Path(self.args.profile) / f"{phase}.txt"
        cmd = shlex.split(self.args.ingest_cmd) if self.args.ingest_cmd else None
        proc = IngestProcess(env, self.tmp / f"ingest-{phase}.log", profile, cmd)
        proc.metrics_port = port
        return proc

    def batch_figures(self, proc: IngestProcess) -> dict[str, float]:
        """Mean messages a batch and mean write+commit time, from ingest's own metrics."""
        m = scrape_metrics(proc.metrics_port)
        out: dict[str, float] = {}
        if m.get("parkbazaar_ingest_batch_messages_count"):
            out["mean_batch_messages"] = round(m["parkbazaar_ingest_batch_messages_sum"]
                                               / m["parkbazaar_ingest_batch_messages_count"], 1)
        if m.get("parkbazaar_ingest_commit_seconds_count"):
            out["mean_commit_ms"] = round(1000 * m["parkbazaar_ingest_commit_seconds_sum"]
                                          / m["parkbazaar_ingest_commit_seconds_count"], 1)
        return out

    # --- bounds ---------------------------------------------------------------------

    def bounds(self) -> dict[str, int]:
        a = self.args
        log("bounds: limits_db.py, limits_mqtt.py batch 1 and 50 (same services)")
        out = db_bound(self.dsn, a.bound_db_rows)
        out |= mqtt_bound(a.bound_mqtt1_events, 1, self.mqtt.host, self.mqtt.port)
        out |= mqtt_bound(a.bound_mqtt50_events, 50, self.mqtt.host, self.mqtt.port)
        log(f"bounds: {out}")
        return out

    # --- progress -------------------------------------------------------------------

    async def committed(self, first_seq: int, per_gateway: int) -> int:
        """Rows committed since ``first_seq``: per gateway, its highest committed seq.

        Each gateway's events are published in seq order into one FIFO session and
        one ingest writer commits batches in order, so the highest seq is the count;
        ``count_rows`` confirms it at the end.
        """
        assert self.con is not None
        top = await self.con.fetch(
            "SELECT (SELECT max(seq) FROM occupancy_events e WHERE e.gateway_id = g) AS top "
            "FROM unnest($1::int[]) AS g", self.gateway_ids)
        return sum(min(per_gateway, max(0, (r["top"] or 0) - first_seq + 1)) for r in top)

    async def count_rows(self, first_seq: int, last_seq: int) -> int:
        assert self.con is not None
        return int(await self.con.fetchval(
            "SELECT count(*) FROM occupancy_events WHERE gateway_id = ANY($1::int[]) "
            "AND seq BETWEEN $2 AND $3", self.gateway_ids, first_seq, last_seq))

    async def wait_committed(self, first_seq: int, total: int, t_start: float,
                             cpu: CpuProbe) -> dict[str, float]:
        """Poll every 50 ms until ``total`` rows are in; the steady rate and the one from start."""
        first: tuple[float, int] | None = None
        per_gateway = total // len(self.gateway_ids)
        deadline = time.perf_counter() + self.args.timeout
        while True:
            done = await self.committed(first_seq, per_gateway)
            now = time.perf_counter()
            if done > 0 and first is None:
                first = (now, done)
                cpu0 = cpu.snapshot()
            if done >= total:
                break
            if now > deadline:
                raise TimeoutError(f"{done}/{total} rows committed after {self.args.timeout:.0f}s")
            await asyncio.sleep(0.05)
        # the highest seq stands for the count only if commits kept each gateway's order:
        # count the rows, and keep counting if they are not all there yet
        last_seq = first_seq + per_gateway - 1
        while (rows := await self.count_rows(first_seq, last_seq)) < total:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{rows}/{total} rows counted after {self.args.timeout:.0f}s")
            await asyncio.sleep(0.05)
            now = time.perf_counter()
        cpu1 = cpu.snapshot()
        assert first is not None
        span = max(now - first[0], 1e-6)
        cores = cpu_figures(cpu0, cpu1, span, total - first[1])
        return {"events": total, "rows_counted": rows, "seconds": round(now - first[0], 3),
                "events_per_s": round((total - first[1]) / span) if total > first[1] else 0,
                "events_per_s_from_start": round(total / (now - t_start)),
                "first_commit_after_s": round(first[0] - t_start, 3), **cores}

    def cpu(self, proc: IngestProcess) -> CpuProbe:
        assert self.con is not None
        broker = self.broker.proc.pid if self.broker and self.broker.proc else None
        return CpuProbe(proc.pid, self.db_name, {self.con.get_server_pid()}, broker)

    # --- phases ---------------------------------------------------------------------

    def backlogs(self, first_seq: int, per_gateway: int, per_message: int) -> list[Backlog]:
        t0 = datetime.now(UTC) - timedelta(minutes=4)
        groups = [tuple(range(k, self.args.gateways, PUBLISHERS)) for k in range(PUBLISHERS)]
        return [Backlog(self.fleet, g, first_seq, per_gateway, per_message, t0) for g in groups]

    def publish(self, backlogs: list[Backlog]) -> dict[str, int]:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(len(backlogs), mp_context=ctx) as pool:
            futures = [pool.submit(publish_backlog, self.mqtt.host, self.mqtt.port, b)
                       for b in backlogs]
            results = [f.result() for f in futures]
        stats = {k: sum(r[k] for r in results) for k in ("sent", "acked", "no_subscribers")}
        stats["seconds_ms"] = max(r["seconds_ms"] for r in results)
        if stats["acked"] != stats["sent"] or stats["no_subscribers"]:
            raise RuntimeError(f"the broker did not take the whole load: {stats}")
        return stats

    async def prime_session(self) -> None:
        """Start and stop ingest once, so the broker keeps a session with its subscription."""
        proc = self.ingest("prime").start()
        await asyncio.to_thread(proc.wait_ready)
        await asyncio.sleep(1.0)  # margin: older ingests logged "running" before the SUBACK
        proc.stop()

    async def drain(self, name: str, total: int, per_message: int) -> dict[str, Any]:
        """Publish ``total`` events while ingest is down, then time ingest draining them."""
        per_gateway = total // self.args.gateways
        first_seq = self.next_seq
        self.next_seq += per_gateway
        n = per_gateway * self.args.gateways
        log(f"{name}: publishing {n} events, {per_message} a message, into the session "
            "(ingest down)")
        pub = await asyncio.to_thread(self.publish, self.backlogs(first_seq, per_gateway, per_message))
        log(f"{name}: broker holds {pub['sent']} messages (published in "
            f"{pub['seconds_ms'] / 1000:.1f}s); starting ingest")
        proc = self.ingest(name).start()
        self.rss.follow(proc.pid, name)
        try:
            result = await self.wait_committed(first_seq, n, proc.started, self.cpu(proc))
            result |= self.batch_figures(proc)
        finally:
            self.rss.follow(proc.pid, f"{name}-stop")
            proc.stop()
        result |= {"per_message": per_message, "messages": pub["sent"]}
        log(f"{name}: {result}")
        return result

    async def live(self, name: str, total: int, per_message: int) -> dict[str, Any]:
        """The same load published while ingest runs (publisher and ingest share the cores)."""
        per_gateway = total // self.args.gateways
        first_seq = self.next_seq
        self.next_seq += per_gateway
        n = per_gateway * self.args.gateways
        proc = self.ingest(name).start()
        await asyncio.to_thread(proc.wait_ready)
        self.rss.follow(proc.pid, name)
        try:
            started = time.perf_counter()
            publishing = asyncio.create_task(
                asyncio.to_thread(self.publish, self.backlogs(first_seq, per_gateway, per_message)))
            result = await self.wait_committed(first_seq, n, started, self.cpu(proc))
            result |= self.batch_figures(proc)
            await publishing
        finally:
            proc.stop()
        result["per_message"] = per_message
        log(f"{name}: {result}")
        return result

    async def freshness(self, seconds: float, rate: float) -> dict[str, Any]:
        """Paced load through the live chain; latency from ``at`` to the commit's NOTIFY."""
        first_seq = self.next_seq
        per_gateway = int(rate * seconds) // self.args.gateways + 1
        self.next_seq += per_gateway
        listener = await asyncpg.connect(self.dsn)
        seen: dict[tuple[int, str], float] = {}

        def on_notify(_c: object, _pid: int, _ch: str, payload: str) -> None:
            now = time.time()
            for c in json.loads(payload)["changes"]:
                seen.setdefault((c["space_id"], c["observed_at"]), now)

        await listener.add_listener("parkbazaar_changes", on_notify)
        proc = self.ingest("freshness").start()
        await asyncio.to_thread(proc.wait_ready)
        self.rss.follow(proc.pid, "freshness")
        started = datetime.now(UTC)
        log(f"freshness: {rate:.0f} events/s, one a message, for {seconds:.0f}s")
        loads: list[float] = []
        sampler = asyncio.create_task(sample_load(loads))
        try:
            pub = await asyncio.to_thread(self.paced, first_seq, rate, seconds)
            sent = pub["sent"]
            await self.wait_rows(first_seq, sent)
            await asyncio.sleep(0.5)
            batches = self.batch_figures(proc)
        finally:
            sampler.cancel()
            proc.stop()
            await listener.close()
        result = await self.freshness_figures(seen, started, first_seq, sent, rate) | batches
        if seconds >= 120:  # a soak: per minute, to tell a trend from a bad minute
            result |= by_minute(seen, started.timestamp(), loads)
        return result

    def paced(self, first_seq: int, rate: float, seconds: float) -> dict[str, int]:
        ctx = mp.get_context("spawn")
        groups = [tuple(range(k, self.args.gateways, PUBLISHERS)) for k in range(PUBLISHERS)]
        with ProcessPoolExecutor(PUBLISHERS, mp_context=ctx) as pool:
            futures = [pool.submit(publish_paced, self.mqtt.host, self.mqtt.port, self.fleet, g,
                                   first_seq, rate / PUBLISHERS, seconds) for g in groups]
            results = [f.result() for f in futures]
        stats = {k: sum(r[k] for r in results) for k in ("sent", "acked", "no_subscribers")}
        if stats["acked"] != stats["sent"] or stats["no_subscribers"]:
            raise RuntimeError(f"the broker did not take the whole load: {stats}")
        return stats

    async def wait_rows(self, first_seq: int, total: int) -> None:
        deadline = time.monotonic() + 30
        while await self.count_rows(first_seq, 2**62) < total:
            if time.monotonic() > deadline:
                raise TimeoutError("freshness load not committed in time")
            await asyncio.sleep(0.1)

    async def freshness_figures(self, seen: dict[tuple[int, str], float], started: datetime,
                                first_seq: int, sent: int, rate: float) -> dict[str, Any]:
        assert self.con is not None
        since = started.timestamp() - 1.0
        lat = sorted((t - datetime.fromisoformat(at).timestamp()) * 1000
                     for (_s, at), t in seen.items()
                     if datetime.fromisoformat(at).timestamp() >= since)
        tx = sorted(r[0] * 1000 for r in await self.con.fetch(
            "SELECT extract(epoch FROM received_at - observed_at)::float8 FROM occupancy_events "
            "WHERE gateway_id = ANY($1::int[]) AND seq >= $2", self.gateway_ids, first_seq))
        rows = await self.count_rows(first_seq, 2**62)
        result = {"rate": rate, "sent": sent, "rows": rows, "samples": len(lat),
                  "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
                  "max_ms": round(lat[-1], 1) if lat else None,
                  "txstart_p50_ms": pct(tx, 50), "txstart_p99_ms": pct(tx, 99)}
        log(f"freshness: {result}")
        return result


async def sample_load(into: list[float]) -> None:
    """The machine's 1-minute load average, every minute (other work shares the machine)."""
    while True:
        await asyncio.sleep(60)
        into.append(round(os.getloadavg()[0], 1))


def by_minute(seen: dict[tuple[int, str], float], t0: float,
              loads: list[float]) -> dict[str, list[float | None]]:
    """Freshness p99 of the events observed in each minute, beside the load average."""
    minutes: dict[int, list[float]] = {}
    for (_s, at), t in seen.items():
        observed = datetime.fromisoformat(at).timestamp()
        if observed >= t0:
            minutes.setdefault(int((observed - t0) // 60), []).append((t - observed) * 1000)
    p99 = [pct(sorted(minutes[m]), 99) for m in sorted(minutes)]
    return {"p99_ms_by_minute": p99, "load_avg_by_minute": list(loads)}


def cpu_figures(before: tuple[float, ...], after: tuple[float, ...], span: float,
                events: int) -> dict[str, float | None]:
    """Cores each process used over the span, and its CPU microseconds per event: the
    second holds on a busy machine, where the rate depends on what else runs."""
    out: dict[str, float | None] = {}
    for i, name in enumerate(("ingest", "postgres", "mosquitto")):
        used = after[i] - before[i]
        if used != used:  # NaN: not measured
            continue
        out[f"{name}_cpu_cores"] = round(used / span, 2)
        out[f"{name}_cpu_us_per_event"] = round(1e6 * used / events, 1) if events else None
    return out


def pct(sorted_values: list[float], p: float) -> float | None:
    return round(percentile(sorted_values, p), 1) if sorted_values else None


def rss_figures(samples: list[tuple[float, str, float]], steady: str) -> dict[str, Any]:
    """Peak, end, per-phase peak, and growth over the steady phase (median first vs last 5 s)."""
    if not samples:
        return {}
    phases: dict[str, float] = {}
    for _t, phase, mb in samples:
        phases[phase] = max(phases.get(phase, 0.0), mb)
    out: dict[str, Any] = {"rss_mb": round(max(s[2] for s in samples), 1),
                           "rss_end_mb": round(samples[-1][2], 1),
                           "rss_peak_mb_by_phase": {k: round(v, 1) for k, v in phases.items()}}
    run = [(t, mb) for t, phase, mb in samples if phase == steady]
    if len(run) > 8:
        t0, t1 = run[0][0], run[-1][0]
        head = [mb for t, mb in run if t - t0 <= 5]
        tail = [mb for t, mb in run if t1 - t <= 5]
        out["rss_growth_mb_steady"] = round(statistics.median(tail) - statistics.median(head), 1)
        out["rss_steady_minutes"] = round((t1 - t0) / 60, 2)
        if t1 - t0 >= 120:  # a soak: the median of every minute, to see a trend
            minutes: dict[int, list[float]] = {}
            for t, mb in run:
                minutes.setdefault(int((t - t0) // 60), []).append(mb)
            out["rss_mb_by_minute"] = [round(statistics.median(v), 1) for v in minutes.values()]
    return out


def ratio(value: float | None, bound: float | None) -> float | None:
    return round(value / bound, 3) if bound and value is not None else None


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    bench = Bench(args, tmp)
    phases = set(args.phases.split(","))
    load = {"load_avg_1m_start": round(os.getloadavg()[0], 2)}
    try:
        await bench.setup()
        bench.rss.start()
        if args.soak:
            await bench.prime_session()
            fresh = await bench.freshness(args.soak, args.rate)
            return {"soak_s": args.soak, "freshness": fresh,
                    **rss_figures(bench.rss.samples, "freshness"), **load}
        bounds = await asyncio.to_thread(bench.bounds) if "bounds" in phases else {}
        await bench.prime_session()
        empty: dict[str, Any] = {"events_per_s": None}
        batched = await bench.drain("batched", args.batched_events, 50) \
            if "batched" in phases else empty
        single = await bench.drain("single", args.single_events, 1) \
            if "single" in phases else empty
        live = {}
        if "live" in phases or args.live:
            live["batched"] = await bench.live("live-batched", args.batched_events, 50)
            live["single"] = await bench.live("live-single", args.single_events, 1)
        fresh = await bench.freshness(args.freshness_seconds, args.rate) \
            if "freshness" in phases else {"p50_ms": None, "p99_ms": None, "rate": args.rate}
        load["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
        return summary(bounds, batched, single, live, fresh, bench.rss.samples) | load
    finally:
        await bench.teardown()


def summary(bounds: dict[str, int], batched: dict[str, Any], single: dict[str, Any],
            live: dict[str, Any], fresh: dict[str, Any],
            samples: list[tuple[float, str, float]]) -> dict[str, Any]:
    db = bounds.get("copy_upsert_rows_per_s")
    rx1 = bounds.get("qos1_batch1_events_per_s")
    out: dict[str, Any] = {
        "events_per_s_batched": batched["events_per_s"],
        "ratio_batched": ratio(batched["events_per_s"], db),
        "events_per_s_single": single["events_per_s"],
        "ratio_single": ratio(single["events_per_s"], rx1),
        "freshness_p50_ms": fresh["p50_ms"], "freshness_p99_ms": fresh["p99_ms"],
        **rss_figures(samples, "freshness"),
        "ingest_cpu_us_per_event_batched": batched.get("ingest_cpu_us_per_event"),
        "ingest_cpu_us_per_event_single": single.get("ingest_cpu_us_per_event"),
        "bounds": bounds,
        "ratio_batched_to_mqtt50": ratio(batched["events_per_s"],
                                         bounds.get("qos1_batch50_events_per_s")),
        "batched": batched, "single": single, "freshness": fresh,
    }
    if live:
        out["live"] = live
    return out


def report(result: dict[str, Any]) -> None:
    """The figures a reader wants, then the JSON line."""
    b = result.get("bounds", {})
    if b:
        print()
        print(f"batched (50/msg)  {result['events_per_s_batched']!s:>8} events/s   "
              f"= {result['ratio_batched']}× COPY+upsert bound "
              f"({b.get('copy_upsert_rows_per_s')} rows/s)   target ≥ 0.5×")
        print(f"single  (1/msg)   {result['events_per_s_single']!s:>8} events/s   "
              f"= {result['ratio_single']}× paho QoS 1 receive bound "
              f"({b.get('qos1_batch1_events_per_s')} events/s)   target ≥ 0.7×")
        print(f"freshness at {result['freshness']['rate']:.0f}/s  p50 {result['freshness_p50_ms']} ms"
              f"   p99 {result['freshness_p99_ms']} ms   target p99 ≤ 500 ms")
    print(f"ingest RSS        peak {result.get('rss_mb')} MB   end {result.get('rss_end_mb')} MB"
          f"   growth over steady load {result.get('rss_growth_mb_steady')} MB")
    print(json.dumps(result, separators=(",", ":")))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--gateways", type=int, default=40)
    p.add_argument("--spaces", type=int, default=100, help="bays per gateway")
    p.add_argument("--batched-events", type=int, default=500_000)
    p.add_argument("--single-events", type=int, default=60_000)
    p.add_argument("--freshness-seconds", type=float, default=25.0)
    p.add_argument("--rate", type=float, default=1000.0, help="events/s of the freshness load")
    p.add_argument("--phases", default="bounds,batched,single,freshness",
                   help="comma-separated subset of bounds,batched,single,live,freshness")
    p.add_argument("--live", action="store_true",
                   help="also time both shapes with the publisher running concurrently")
    p.add_argument("--soak", type=float, metavar="SECONDS",
                   help="only the paced load for SECONDS, for RSS flatness")
    p.add_argument("--profile", metavar="DIR",
                   help="attach py-spy (raw, non-blocking) to every ingest process")
    p.add_argument("--ingest-cmd", metavar="CMD",
                   help="run this instead of `python -m parkbazaar ingest` (to measure a variant)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--bound-db-rows", type=int, default=200_000)
    p.add_argument("--bound-mqtt1-events", type=int, default=30_000)
    p.add_argument("--bound-mqtt50-events", type=int, default=500_000)
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pb-bench-ingest-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    report(result)


if __name__ == "__main__":
    main()
