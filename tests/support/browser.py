"""The browser of the page tests: Debian's chromium driven by Playwright (never
Playwright's own browser download), and the parkbazaar API as a process of its own
serving a provisioned test city, so a test can write events and watch the page."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import asyncpg
import cv2
import numpy as np

from stack.embedded import free_port
from tests.support.api import observe
from tests.support.waiting import wait_http

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def api_process(dsn: str, log: Path, **api: str) -> Iterator[str]:
    """``parkbazaar api`` on a free port reading ``dsn`` (no rate limit, no cache; more
    ``api.*`` settings as keywords); yields its base URL, stops it on exit."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKBAZAAR_")}
    env |= {"PARKBAZAAR_DATABASE_URL": dsn, "PARKBAZAAR_API__RATE_LIMIT_PER_S": "0",
            "PARKBAZAAR_API__CACHE_TTL_S": "0"}
    env |= {f"PARKBAZAAR_API__{k.upper()}": v for k, v in api.items()}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "parkbazaar", "api", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Tile(BaseHTTPRequestHandler):
    png = cv2.imencode(".png", np.full((256, 256, 3), (205, 225, 235), np.uint8))[1].tobytes()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.png)))
        self.end_headers()
        self.wfile.write(self.png)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def tile_server() -> Iterator[str]:
    """A slippy-map tile server on 127.0.0.1 (every tile a plain one); yields its
    URL template ``http://127.0.0.1:PORT/{z}/{x}/{y}.png``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    finally:
        server.shutdown()
        thread.join()


def in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a thread of its own: where Playwright's synchronous API runs, its event
    loop is the thread's, so ``asyncio.run`` (and what calls it) must run elsewhere."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def set_state(dsn: str, site: str, space: str, state: str, at: datetime, seq: int) -> None:
    """Write an observation as ingest does (and NOTIFY)."""
    async def write() -> None:
        con = await asyncpg.connect(dsn)
        try:
            await observe(con, site, space, state, at, seq)
        finally:
            await con.close()

    in_thread(lambda: asyncio.run(write()))
