"""Sharing the expensive reads fairly: a cap per client, and identical reads flown once.

The bulkhead (``dashboard_api.limits.Bulkhead``) bounds how many expensive reads
a process runs at once; alone, it lets one client fill every slot and queue
place, so everyone else's reports and histories get 503. Two more rules:

- ``ClientGates``: each client (an address; a manager token for the reports)
  may have ``per_client`` distinct expensive reads in progress and ``queue``
  more waiting for one of its own to finish, at most ``wait_s``; past that it is
  refused at once (``Busy`` → 503), before it reaches the bulkhead. One client
  then holds at most ``per_client`` of the bulkhead's slots, whatever it sends.
  Asking again for a history it has in progress (many drivers behind one
  address opening one page) takes no new place: the query is shared anyway.
- ``SingleFlight``: identical reads (same key) in progress at the same time
  share one query and its bytes. A read never joins a query that *started*
  before it arrived (that query's snapshot could predate a commit the reader
  has a right to see): it joins the *next* flight of its key, which starts as
  soon as the current one lands, and which every reader arriving meanwhile
  shares. So a thousand clients asking one history cost at most two queries in
  progress, and every answer is computed after its request arrived.

``admit`` is the gates' decision, pure; the classes only keep counts and wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from prometheus_client import Counter

from dashboard_api import Busy
from dashboard_api.limits import REFUSED

T = TypeVar("T")
FLIGHTS = Counter("parkbazaar_api_expensive_reads", "Expensive reads that ran a query of their own "
                  "(query) or shared an identical one with other readers (shared)", ["result"])
_QUERY, _SHARED = FLIGHTS.labels("query"), FLIGHTS.labels("shared")


class Admission(Enum):
    RUN = "run"        # a place of the client's is free: go on
    WAIT = "wait"      # wait for one of the client's reads to finish
    REFUSE = "refuse"  # the client's places and its queue are full: 503 now


def admit(running: int, waiting: int, per_client: int, queue: int) -> Admission:
    """What a client's new expensive read gets, given its distinct reads in progress and its
    requests waiting (pure).
    Waiting readers go first: a new one never overtakes the queue."""
    if running < per_client and waiting == 0:
        return Admission.RUN
    if waiting < queue:
        return Admission.WAIT
    return Admission.REFUSE


@dataclass(slots=True)
class _Gate:
    places: asyncio.Semaphore
    reads: dict[str, int] = field(default_factory=dict)  # each read in progress: its requests
    waiting: int = 0


class ClientGates:
    """At most ``per_client`` distinct expensive reads of one client in progress, ``queue``
    more waiting up to ``wait_s`` each; a client with nothing in progress is forgotten."""

    def __init__(self, per_client: int, queue: int, wait_s: float) -> None:
        self.per_client, self.queue, self.wait_s = per_client, queue, wait_s
        self._gates: dict[str, _Gate] = {}
        self._serial = itertools.count()

    def load(self, client: str) -> tuple[int, int]:
        """(distinct reads in progress, requests waiting) of ``client``."""
        gate = self._gates.get(client)
        return (len(gate.reads), gate.waiting) if gate else (0, 0)

    @contextlib.asynccontextmanager
    async def gate(self, client: str, read: str | None = None) -> AsyncIterator[None]:
        """Hold one of ``client``'s places for the body; ``Busy`` when none is free in time.
        A request for a ``read`` (its key) the client has in progress already shares that
        read's place (its query is shared too); ``None``: a read of its own, always a place."""
        gate = self._gates.setdefault(client, _Gate(asyncio.Semaphore(self.per_client)))
        read = read if read is not None else f"#{next(self._serial)}"
        try:
            if read not in gate.reads:
                await self._take_place(gate)
                if read in gate.reads:  # a request of the same read took one while this one waited
                    gate.places.release()
                else:
                    gate.reads[read] = 0
            gate.reads[read] += 1
            try:
                yield
            finally:
                gate.reads[read] -= 1
                if not gate.reads[read]:
                    del gate.reads[read]
                    gate.places.release()
        finally:
            if not gate.reads and not gate.waiting:
                self._gates.pop(client, None)

    async def _take_place(self, gate: _Gate) -> None:
        verdict = admit(len(gate.reads), gate.waiting, self.per_client, self.queue)
        if verdict is Admission.REFUSE:
            REFUSED.labels("busy_client").inc()
            raise Busy(f"this client already has {len(gate.reads)} expensive reads in progress and "
                       f"{gate.waiting} waiting: wait for them")
        if verdict is Admission.RUN:
            await gate.places.acquire()  # free: taken without suspending
        else:
            await self._wait(gate)

    async def _wait(self, gate: _Gate) -> None:
        gate.waiting += 1
        try:
            await asyncio.wait_for(gate.places.acquire(), self.wait_s)
        except TimeoutError:
            REFUSED.labels("busy_client").inc()
            raise Busy(f"this client's earlier expensive reads did not finish within {self.wait_s:g} s"
                       ) from None
        finally:
            gate.waiting -= 1


@dataclass(slots=True)
class _Flights(Generic[T]):
    flying: asyncio.Task[T] | None = None    # its load has started: nobody joins it any more
    boarding: asyncio.Task[T] | None = None  # the next one: its load starts when ``flying`` lands
    readers: int = 0


class SingleFlight(Generic[T]):
    """``run(key, load)``: the result of a ``load()`` of ``key`` that started after this call,
    shared with every other caller of the same key waiting for the same flight."""

    def __init__(self) -> None:
        self._by_key: dict[str, _Flights[T]] = {}

    def boarding(self, key: str) -> bool:
        """Whether a flight of ``key`` waits to start (a reader now would share it)."""
        f = self._by_key.get(key)
        return f is not None and f.boarding is not None

    def in_progress(self, key: str) -> int:
        """Flights of ``key`` flying or boarding, not yet landed (0, 1 or 2)."""
        f = self._by_key.get(key)
        return 0 if f is None else sum(t is not None and not t.done() for t in (f.flying, f.boarding))

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        flights = self._by_key.setdefault(key, _Flights())
        task = flights.boarding
        if task is None:
            _QUERY.inc()
            task = flights.boarding = _started(self._board(flights, flights.flying, load))
        else:
            _SHARED.inc()
        flights.readers += 1
        try:
            # shielded: a reader that goes away does not cancel the others' query
            return await asyncio.shield(task)
        finally:
            flights.readers -= 1
            if flights.readers == 0 and flights.boarding is None and flights.flying in (None, task):
                self._by_key.pop(key, None)

    @staticmethod
    async def _board(flights: _Flights[T], ahead: asyncio.Task[T] | None,
                     load: Callable[[], Awaitable[T]]) -> T:
        if ahead is not None and not ahead.done():
            await asyncio.wait([ahead])  # its result is not ours: it may predate our readers
        flights.flying, flights.boarding = flights.boarding, None
        return await load()


def _started(flight: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    task = asyncio.create_task(flight)
    task.add_done_callback(_retrieved)
    return task


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Mark a flight's error as seen: every reader of it may have gone away."""
    if not task.cancelled():
        task.exception()
