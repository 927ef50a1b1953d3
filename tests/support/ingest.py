"""Ingest for the tests: in this event loop (``running_ingest``), as real processes
(``IngestProcess``), load that keeps coming (``Feeder``), and the marker that proves
ingest got past a point in the stream (``publish_then_marker``)."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

import asyncpg
import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from ingest.service import run_ingest
from occupancy.config import Settings, load_settings
from occupancy.wire import Status, encode_status
from stack.embedded import free_port
from tests.support.mqtt import publish
from tests.support.registry import GW_OTHER, SPACES, batches, events_topic, make_events, status_topic
from tests.support.waiting import wait_until


def settings_for(dsn: str, url: str, prefix: str, **ingest: object) -> Settings:
    """Settings of an ingest for this test's database, broker and topic prefix;
    ``ingest`` overrides keys of the ``ingest`` section."""
    return load_settings(database_url=dsn, mqtt_url=url, topic_prefix=prefix,
                         ingest={"client_id": f"ingest-{prefix.split('/')[0]}", **ingest})


@contextlib.asynccontextmanager
async def running_ingest(settings: Settings) -> AsyncIterator[asyncio.Task[dict[str, int]]]:
    """Ingest as a task of this loop; stopped (drained) on exit."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, stop, ready))
    done, _ = await asyncio.wait({task, asyncio.ensure_future(ready.wait())},
                                 return_when=asyncio.FIRST_COMPLETED, timeout=20)
    if task in done:
        task.result()  # raises what went wrong
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


STARTED: list[IngestProcess] = []


def reap() -> None:
    """Kill what a failed test left running (fixtures call it at teardown)."""
    while STARTED:
        proc = STARTED.pop()
        if proc.alive():
            proc.kill()


class IngestProcess:
    """``parkbazaar ingest`` with its own persistent session; its log is kept, and its
    metrics are served on a port of its own (``processed``)."""

    def __init__(self, dsn: str, url: str, prefix: str, client_id: str, **settings: str) -> None:
        self.metrics_port = free_port()
        env = {**os.environ, "PARKBAZAAR_DATABASE_URL": dsn, "PARKBAZAAR_MQTT_URL": url,
               "PARKBAZAAR_TOPIC_PREFIX": prefix, "PARKBAZAAR_INGEST__CLIENT_ID": client_id,
               "PARKBAZAAR_INGEST__METRICS_PORT": str(self.metrics_port)}
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

    def processed(self) -> int:
        """Messages this process has committed (``parkbazaar_ingest_messages_total``)."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "parkbazaar_ingest_messages_total":
                    return int(sample.value)
        raise AssertionError(f"no parkbazaar_ingest_messages_total at :{self.metrics_port}")

    def totals(self) -> dict[str, int]:
        """The totals it logged as it stopped (``stop`` first)."""
        return totals_in(self.log)

    def rss_mb(self) -> float:
        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20


def totals_in(log: str) -> dict[str, int]:
    """A stopped worker's totals, from its last log line (``ingest stopped: {…}``)."""
    match = re.search(r"ingest stopped: (\{.*\})", log)
    assert match, log[-2000:]
    totals: dict[str, int] = ast.literal_eval(match.group(1))
    return totals


class Feeder(threading.Thread):
    """Publishes messages in chunks, paced, until all are sent (retries a lost broker; with
    ``fallbacks``, the next of the broker URLs, like a gateway given a cluster's nodes)."""

    def __init__(self, url: str, messages: Sequence[tuple[str, bytes]], *, chunk: int = 50,
                 pause_s: float = 0.0, fallbacks: Sequence[str] = ()) -> None:
        super().__init__(daemon=True)
        self.url, self.messages, self.chunk, self.pause_s = url, messages, chunk, pause_s
        self.urls = [url, *fallbacks]
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
                    self.urls.append(self.urls.pop(0))
                    self.url = self.urls[0]
                    continue
                self.sent += len(part)
                time.sleep(self.pause_s)
        except BaseException as exc:  # reported by the test
            self.error = exc


# ---- markers: proof that ingest got past a point in the stream ------------------------------


def event_marker(prefix: str, seq: int, space: str = SPACES[-1]) -> tuple[str, bytes]:
    """A valid event of gw1 with ``seq`` (on ``space``): published after what must be
    ignored, it is stored only once ingest has got that far (``has_seq``)."""
    return events_topic(prefix), batches(make_events(1, start_seq=seq, spaces=[space]), 1)[0]


def birth_marker(prefix: str, boot: int) -> tuple[str, bytes]:
    """A birth of gw2 with ``boot``: a marker that touches no space (``gateway_is``)."""
    return status_topic(prefix, GW_OTHER), encode_status(Status(True, boot, datetime.now(UTC)))


async def gateway_is(con: asyncpg.Connection, slug: str, want: tuple[bool, int]) -> bool:
    """True when the gateway's stored (online, boot) is ``want``."""
    row = await con.fetchrow("SELECT online, boot FROM gateways WHERE slug = $1", slug)
    return row is not None and (row["online"], row["boot"]) == want


async def publish_then_marker(url: str, messages: Sequence[tuple[str, bytes]],
                              marker: tuple[str, bytes], arrived: Callable[[], Awaitable[bool]],
                              timeout: float = 30.0) -> None:
    """Publish ``messages`` and then ``marker`` on one connection, and wait until
    ``arrived()`` says the marker is stored.

    The broker delivers one session's messages in order, so ingest has received
    everything before the marker; with one writer (``writers=1``) it also commits in
    that order, so whatever those messages were going to write is written by now:
    asserting that something is absent is then a real check, not a bet on time."""
    await asyncio.to_thread(publish, url, [*messages, marker])
    await wait_until(arrived, timeout, "the marker published after the messages")


async def drained_after_marker(con: asyncpg.Connection, url: str, prefix: str, proc: IngestProcess,
                               boot: int = 1, timeout: float = 120.0) -> str:
    """Publish a birth marker of gw2 (``boot``) after everything published so far, wait
    until it is stored, then stop ``proc`` (SIGTERM: it writes and acknowledges everything
    it received) and return its log. The broker delivers one session's messages in order,
    so every message published before the marker is written by then: nothing more can
    arrive, and the marker adds no event and changes no space."""
    await asyncio.to_thread(publish, url, [birth_marker(prefix, boot)])
    await wait_until(lambda: gateway_is(con, GW_OTHER, (True, boot)), timeout,
                     lambda: f"the marker (gw2 boot {boot})\n{proc.log[-2000:]}")
    return await asyncio.to_thread(proc.stop)
