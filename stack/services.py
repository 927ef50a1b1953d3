"""Ingest and the API in this process, each with ``start()`` and ``stop()``.

Both run as tasks of the caller's event loop. The API is uvicorn without its
own signal handling: whoever runs the stack owns SIGINT/SIGTERM. Tests stop
and restart ingest mid-run through ``IngestHandle`` to break the chain on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from dashboard_api.app import create_app
from ingest.service import run_ingest
from occupancy.config import Settings
from stack import ServiceStartError

INGEST_READY_S = 60.0  # ingest's own bounded retries to reach the database and broker fit in it
API_READY_S = 30.0


class IngestHandle:
    """The in-process ingest of a stack: ``start()`` returns once it is subscribed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._task: asyncio.Task[dict[str, int]] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Start ingest; ``ServiceStartError`` when it is not subscribed in time, its own
        error when it failed."""
        self._stop = asyncio.Event()
        ready = asyncio.Event()
        self._task = asyncio.create_task(run_ingest(self.settings, self._stop, ready), name="ingest")
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED,
                           timeout=INGEST_READY_S)
        waiter.cancel()
        if self._task.done():
            self._task.result()
        if not ready.is_set():
            await self.stop()
            raise ServiceStartError(f"ingest did not subscribe within {INGEST_READY_S:g}s")

    async def stop(self) -> None:
        """Ask ingest to drain and wait for it (at most a minute)."""
        if self._task is not None:
            self._stop.set()
            await asyncio.wait_for(self._task, 60)
            self._task = None


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """The API (``dashboard_api.app``) on uvicorn in this process, at ``host:port``."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.host, self.port = host, port
        config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning",
                                lifespan="on")
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Serve; returns once uvicorn accepts connections (``ServiceStartError`` if it never does)."""
        self._task = asyncio.create_task(self._server.serve(), name="api")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + API_READY_S
        # uvicorn has no started event: poll its flag
        while not self._server.started and not self._task.done() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if not self._server.started:
            await self.stop()
            raise ServiceStartError(f"the API did not start on {self.url}")

    async def stop(self) -> None:
        """Finish the requests in flight and stop."""
        if self._task is not None:
            self._server.should_exit = True
            await self._task
            self._task = None
