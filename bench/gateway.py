"""Gateway throughput: events a node sustains (observe → PUBACK'd and deleted from the
outbox) and how fast the outbox drains after a broker outage.

Runs a Mosquitto of its own on 127.0.0.1 (``stack.embedded``). Usage::

    python bench/gateway.py [--events 20000] [--backlog 50000]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# this file is named like the package it measures: keep bench/ off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from gateway.node import GatewayNode  # noqa: E402
from gateway.outbox import EventDraft  # noqa: E402
from occupancy.config import MqttUrl  # noqa: E402
from occupancy.ids import SpaceRef  # noqa: E402
from occupancy.model import Source, SpaceState  # noqa: E402
from stack.embedded import Mosquitto  # noqa: E402

SPACES = [SpaceRef.parse(f"lot/S-{i:03d}") for i in range(1, 201)]


def drafts(n: int, offset: int = 0) -> list[EventDraft]:
    at = datetime.now(UTC)
    return [EventDraft(SPACES[(offset + i) % len(SPACES)],
                       SpaceState.OCCUPIED if (offset + i) % 2 else SpaceState.FREE, at,
                       Source.SENSOR) for i in range(n)]


def node(broker: Mosquitto, path: Path) -> GatewayNode:
    # MQTT 3.1.1: no subscriber here, and over MQTT 5 the broker's "no matching
    # subscribers" PUBACK would (rightly) keep every event in the outbox
    url = MqttUrl.parse(f"{broker.url}?protocol=4")
    return GatewayNode("bench", "gw-bench", path, url, "bench/v1",
                       client_id=f"gw-bench-{path.stem}", reconnect_max_s=0.5)


def sustained(broker: Mosquitto, folder: Path, events: int, batch: int) -> float:
    """Events/s from the first observe to the last PUBACK, ``batch`` events per observe."""
    n = node(broker, folder / f"sustained-{batch}.sqlite")
    n.start()
    assert n.wait_connected(10)
    start = time.perf_counter()
    for i in range(0, events, batch):
        n.observe_many(drafts(min(batch, events - i), i))
    assert n.flush(120)
    rate = events / (time.perf_counter() - start)
    n.stop()
    return rate


def drain(broker: Mosquitto, folder: Path, backlog: int) -> tuple[float, float]:
    """Backlog built while the broker is down; returns (store events/s, drain events/s)."""
    n = node(broker, folder / "drain.sqlite")
    n.start()
    assert n.wait_connected(10)
    broker.stop()
    start = time.perf_counter()
    for i in range(0, backlog, 500):
        n.observe_many(drafts(500, i))
    stored = backlog / (time.perf_counter() - start)
    broker.start()
    assert n.wait_connected(30)
    start = time.perf_counter()
    assert n.flush(300)
    drained = backlog / (time.perf_counter() - start)
    n.stop()
    return stored, drained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pb-bench-gw-") as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "mosquitto").start()
        try:
            one = sustained(broker, folder, min(args.events, 2_000), 1)
            fifty = sustained(broker, folder, args.events, 50)
            stored, drained = drain(broker, folder, args.backlog)
        finally:
            broker.stop(kill=True)
    result = {"sustained_events_per_s_batch_1": round(one), "sustained_events_per_s_batch_50": round(fifty),
              "outage_store_events_per_s": round(stored), "drain_events_per_s": round(drained),
              "backlog": args.backlog}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
