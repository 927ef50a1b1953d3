"""The machine's own bounds, measured in the same run as a benchmark.

Runs the reference scripts of ``../shared/bench`` as subprocesses against the
services the benchmark uses and parses the one figure each prints:

- ``limits_db.py DSN N`` → ``copy_rows_per_s``, ``copy_upsert_rows_per_s``
  (asyncpg COPY, and COPY into a temp table + ``INSERT … ON CONFLICT DO NOTHING``);
- ``limits_mqtt.py N QOS BATCH HOST PORT`` → ``qos1_batchB_events_per_s``
  (one paho subscriber receiving and JSON-decoding, publisher on the same cores).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SHARED_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"
_FIGURE = re.compile(r"^(\w+_per_s) (\d+)(?: received (\d+)/(\d+))?", re.MULTILINE)


class BoundError(RuntimeError):
    """A reference script failed or printed nothing we understand."""


def parse_figures(text: str) -> dict[str, int]:
    """``name_per_s N [received a/b]`` lines → {name: N, name_received: a, name_sent: b}."""
    out: dict[str, int] = {}
    for m in _FIGURE.finditer(text):
        out[m[1]] = int(m[2])
        if m[3] is not None:
            out[f"{m[1].removesuffix('_events_per_s')}_received"] = int(m[3])
            out[f"{m[1].removesuffix('_events_per_s')}_sent"] = int(m[4])
    return out


def _run(args: list[str], timeout: float) -> dict[str, int]:
    cmd = [sys.executable, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BoundError(f"{' '.join(args)}: no result in {timeout:.0f}s") from exc
    figures = parse_figures(done.stdout)
    if done.returncode != 0 or not figures:
        raise BoundError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")
    return figures


def db_bound(dsn: str, rows: int) -> dict[str, int]:
    return _run([str(SHARED_BENCH / "limits_db.py"), dsn, str(rows)], timeout=120)


def mqtt_bound(events: int, batch: int, host: str, port: int) -> dict[str, int]:
    args = [str(SHARED_BENCH / "limits_mqtt.py"), str(events), "1", str(batch), host, str(port)]
    return _run(args, timeout=120)

