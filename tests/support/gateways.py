"""Helpers of the gateway tests: configs for gw1 of the test registry, processes, DB checks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from gateway.config import GatewayConfig, parse_gateway_config
from gateway.service import GatewayService, ServiceStats
from tests.support.registry import GW, SITE, TENANT

REPO = Path(__file__).resolve().parents[2]


def config_dict(broker_url: str, prefix: str, state_dir: Path, devices: list[dict[str, Any]],
                **over: Any) -> dict[str, Any]:
    """gw1 of ``seed_registry``'s tenant, reporting to ``broker_url``, fast periods."""
    return {
        "tenant": TENANT, "gateway": GW, "topic_prefix": prefix, "state_dir": str(state_dir),
        "broker": {"url": broker_url, "client_id": f"gw-{prefix.split('/')[0]}",
                   "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0, "keepalive_s": 5},
        "heartbeat_s": 30, "health_s": 0.5, "stale_after_s": 30, "tick_s": 0.1,
        "devices": devices, **over,
    }


def simulated(count: int = 50, *, poll_s: float = 0.05, p: float = 0.2,
              device: str = "sim-1") -> dict[str, Any]:
    return {"id": device, "kind": "simulated", "poll_s": poll_s, "change_probability": p,
            "spaces": [{"site": SITE, "prefix": "S-", "count": count}]}


def make_config(data: dict[str, Any], base: Path) -> GatewayConfig:
    return parse_gateway_config(data, base, "test-config")


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig) -> AsyncIterator[tuple[GatewayService, list[ServiceStats]]]:
    """The gateway service as a task of this loop; stopped (SIGTERM-like) on exit."""
    service = GatewayService(config, flush_timeout=10.0)
    stop, ready = asyncio.Event(), asyncio.Event()
    result: list[ServiceStats] = []
    task = asyncio.create_task(service.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield service, result
    finally:
        stop.set()
        result.append(await asyncio.wait_for(task, 30))


def gateway_process(config_path: Path) -> subprocess.Popen[str]:
    """``parkbazaar gateway run --config`` as a child process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "parkbazaar", "gateway", "run", "--config", str(config_path),
         "--flush-timeout", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})


def write_config(data: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def terminate(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """SIGTERM and wait; returns what it printed."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=timeout)
    return out


async def stored_seqs(con: asyncpg.Connection, gateway: str = GW) -> list[int]:
    """Every stored seq of the gateway, duplicates included, in seq order."""
    rows = await con.fetch(
        "SELECT e.seq FROM occupancy_events e JOIN gateways g ON g.id = e.gateway_id "
        "WHERE g.slug = $1 ORDER BY e.seq", gateway)
    return [int(r["seq"]) for r in rows]


async def stored_kinds(con: asyncpg.Connection, gateway: str = GW) -> dict[str, int]:
    rows = await con.fetch(
        "SELECT e.kind, count(*) AS n FROM occupancy_events e JOIN gateways g ON g.id = e.gateway_id "
        "WHERE g.slug = $1 GROUP BY e.kind", gateway)
    return {r["kind"]: int(r["n"]) for r in rows}


def first_arrivals(seqs: list[int]) -> list[int]:
    """The seqs in the order they first arrived (a resend of an old one is not an arrival)."""
    seen: set[int] = set()
    out = []
    for s in seqs:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
