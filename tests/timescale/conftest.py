"""A TimescaleDB for the tests, without a TimescaleDB server package.

Debian ships no TimescaleDB, so the TimescaleDB flavor of the migrations is
tested on PGlite (PostgreSQL 17 compiled to WASM) with the timescaledb
extension, run by Node (``server.mjs``) and reached over the PostgreSQL wire
protocol on 127.0.0.1, like any server. The npm packages are pinned in
``package-lock.json`` and installed here with ``npm ci`` on first use (or when
the lock file changed), so a fresh clone needs no manual step.

PGlite is one backend: it serves one connection at a time (others wait), so a
test must close its connection before opening the next. asyncpg must not try
TLS (``sslmode=disable``), and COPY crashes the WASM instance: use INSERT.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.npm import npm_ci

HERE = Path(__file__).resolve().parent
MIN_NODE = 20
START_TIMEOUT_S = 60.0
_READY = re.compile(r"^READY (postgresql://\S+)$")


def _need_node() -> None:
    """Skip (with why) unless node >= 20 and npm are on PATH."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("TimescaleDB tests need Node.js >= 20 and npm on PATH (apt-get install nodejs npm)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < MIN_NODE:
        pytest.skip(f"TimescaleDB tests need Node.js >= {MIN_NODE}, found {version.stdout.strip()}")


def _wait_ready(proc: subprocess.Popen[str], log: Path) -> str:
    """The DSN the server prints once it accepts connections."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if sel.select(timeout=left):
                line = proc.stdout.readline()
                if not line:
                    break  # the server exited
                if m := _READY.match(line.strip()):
                    return m.group(1)
    raise RuntimeError(f"PGlite server did not start:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def timescale_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of a fresh, empty PGlite+TimescaleDB server, one per test module."""
    _need_node()
    npm_ci(HERE)
    log = tmp_path_factory.mktemp("pglite") / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            ["node", str(HERE / "server.mjs"), "0"],  # port 0: a free one, printed back
            cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
    try:
        yield _wait_ready(proc, log) + "?sslmode=disable"
    finally:
        _stop(proc)
