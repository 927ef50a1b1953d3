"""Processes of the ingest benchmark: ``parkbazaar ingest`` as a subprocess (optionally
profiled by py-spy) and a sampler of its resident memory."""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import psutil


class IngestProcess:
    """``python -m parkbazaar ingest`` (or ``cmd``) with the given environment, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, profile: Path | None = None,
                 cmd: list[str] | None = None) -> None:
        self.env, self.log_path, self.profile = env, log_path, profile
        self.cmd = cmd or [sys.executable, "-m", "parkbazaar", "ingest"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.spy: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.started = 0.0
        self.metrics_port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> IngestProcess:
        self._log = self.log_path.open("wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        if self.profile is not None:
            self._attach_spy(self.profile)
        return self

    def _attach_spy(self, out: Path) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        # raw = collapsed stacks, one line per stack with its sample count;
        # non-blocking: the target is not paused to be sampled
        self.spy = subprocess.Popen([spy, "record", "--pid", str(self.pid), "-o", str(out),
                                     "-f", "raw", "-r", "200", "--nonblocking", "--threads"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until ingest logged that it is connected and subscribed."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while " running" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ingest did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (ingest drains and acknowledges what it took), then wait."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self.spy is not None:
            try:
                self.spy.wait(30)
            except subprocess.TimeoutExpired:
                self.spy.send_signal(signal.SIGINT)
                self.spy.wait(30)
        if self._log is not None:
            self._log.close()
        if code != 0:
            print(f"ingest exited {code}:\n{self.log_tail()}", file=sys.stderr)
        return code


class RssSampler(threading.Thread):
    """Samples the followed process's RSS (MB) every ``period`` seconds, labelled by phase."""

    def __init__(self, period: float = 0.25) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.period = period
        self.samples: list[tuple[float, str, float]] = []
        self._target: tuple[psutil.Process, str] | None = None
        self._halt = threading.Event()

    def follow(self, pid: int, phase: str) -> None:
        try:
            self._target = (psutil.Process(pid), phase)
        except psutil.NoSuchProcess:
            self._target = None

    def run(self) -> None:
        while not self._halt.wait(self.period):
            target = self._target
            if target is None:
                continue
            try:
                rss = target[0].memory_info().rss / 2**20
            except psutil.Error:
                continue
            if rss > 0:  # a process being reaped reports 0
                self.samples.append((time.monotonic(), target[1], rss))

    def stop(self) -> None:
        self._halt.set()


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class CpuProbe:
    """CPU seconds used so far by the ingest process, by the PostgreSQL backends
    serving the bench's database (the bench's own connections excluded) and by
    the broker (when it is the bench's own)."""

    def __init__(self, pid: int, db_name: str, exclude: set[int], broker: int | None) -> None:
        self.proc = psutil.Process(pid)
        self.broker = psutil.Process(broker) if broker else None
        self.db_name, self.exclude = db_name, exclude

    def snapshot(self) -> tuple[float, float, float]:
        return _cpu(self.proc), self._backends(), _cpu(self.broker) if self.broker else math.nan

    def _backends(self) -> float:
        total = 0.0
        for p in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["name"] != "postgres" or self.db_name not in cmd or p.pid in self.exclude:
                continue
            t = p.info["cpu_times"]
            if t is not None:
                total += t.user + t.system
        return total


def _cpu(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return math.nan
    return float(t.user + t.system)


def scrape_metrics(port: int) -> dict[str, float]:
    """Unlabelled samples of ingest's Prometheus endpoint (``name value`` lines)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("parkbazaar_") and "{" not in name:
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out
