"""Ingest as real processes, and load that keeps coming, for the fault tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import psutil

from tests.integration.support import publish

STARTED: list[IngestProcess] = []


def reap() -> None:
    """Kill what a failed test left running (fixtures call it at teardown)."""
    while STARTED:
        proc = STARTED.pop()
        if proc.alive():
            proc.kill()


class IngestProcess:
    """``parkbazaar ingest`` with its own persistent session; its log is kept."""

    def __init__(self, dsn: str, url: str, prefix: str, client_id: str, **settings: str) -> None:
        env = {**os.environ, "PARKBAZAAR_DATABASE_URL": dsn, "PARKBAZAAR_MQTT_URL": url,
               "PARKBAZAAR_TOPIC_PREFIX": prefix, "PARKBAZAAR_INGEST__CLIENT_ID": client_id}
        env.update({f"PARKBAZAAR_INGEST__{k.upper()}": v for k, v in settings.items()})
        self.proc = subprocess.Popen([sys.executable, "-m", "parkbazaar", "ingest"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        STARTED.append(self)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if "subscribed (generation" in line:
                self._ready.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 30.0) -> IngestProcess:
        """Until it is subscribed (the broker's SUBACK), or fail with its log."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ingest did not start:\n{self.log[-3000:]}")
        return self

    def wait_for_line(self, text: str, timeout: float = 30.0) -> None:
        """Until a line of its log holds ``text``, or fail with its log."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the ingest log:\n{self.log[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        """SIGTERM, wait, and return its log; a failed exit is an assertion error."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self._reader.join(10)
        assert self.proc.returncode == 0, self.log[-3000:]
        return self.log

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mb(self) -> float:
        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20


def stored_in(log: str) -> int:
    """How many events a stopped worker stored, from its last log line (``ingest stopped: …``)."""
    match = re.search(r"'stored': (\d+)", log)
    assert match, log[-2000:]
    return int(match.group(1))


class Feeder(threading.Thread):
    """Publishes messages in chunks, paced, until all are sent (retries a lost broker)."""

    def __init__(self, url: str, messages: Sequence[tuple[str, bytes]], *, chunk: int = 50,
                 pause_s: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.url, self.messages, self.chunk, self.pause_s = url, messages, chunk, pause_s
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while self.sent < len(self.messages):
                part = self.messages[self.sent:self.sent + self.chunk]
                try:
                    publish(self.url, part)
                except (OSError, AssertionError, ValueError):
                    time.sleep(0.5)  # the broker is away: send this chunk again (same seqs)
                    continue
                self.sent += len(part)
                time.sleep(self.pause_s)
        except BaseException as exc:  # reported by the test
            self.error = exc
