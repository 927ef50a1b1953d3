"""Sharing expensive reads (no I/O): the per-client gate's table and its waits, and
single flights that share one load but never one that started before their reader."""

from __future__ import annotations

import asyncio

import pytest

from dashboard_api import Busy
from dashboard_api.fairness import Admission, ClientGates, SingleFlight, admit


@pytest.mark.parametrize(
    ("running", "waiting", "per_client", "queue", "expected"),
    [
        (0, 0, 1, 4, Admission.RUN),
        (1, 0, 1, 4, Admission.WAIT),
        (1, 3, 1, 4, Admission.WAIT),
        (1, 4, 1, 4, Admission.REFUSE),
        (1, 0, 1, 0, Admission.REFUSE),   # no queue: one at a time, the rest refused
        (1, 0, 2, 4, Admission.RUN),
        (1, 1, 2, 4, Admission.WAIT),     # a place is free but someone waits for it: no overtaking
        (2, 4, 2, 4, Admission.REFUSE),
    ],
)
def test_admit_table(running: int, waiting: int, per_client: int, queue: int, expected: Admission) -> None:
    assert admit(running, waiting, per_client, queue) is expected


async def test_one_client_is_capped_and_others_pass() -> None:
    gates = ClientGates(per_client=1, queue=1, wait_s=5)
    release = asyncio.Event()
    entered: list[str] = []

    async def read(client: str) -> None:
        async with gates.gate(client):
            entered.append(client)
            await release.wait()

    first = asyncio.create_task(read("a"))
    queued = asyncio.create_task(read("a"))
    await asyncio.sleep(0)  # one step each: the first is in (a free place is taken at once), one waits
    assert gates.load("a") == (1, 1)
    with pytest.raises(Busy, match="1 expensive reads in progress and 1 waiting"):
        await read("a")
    other = asyncio.create_task(read("b"))  # another client is not behind "a"
    await asyncio.sleep(0)
    assert entered == ["a", "b"]
    release.set()
    await asyncio.gather(first, queued, other)
    assert entered == ["a", "b", "a"]
    assert gates.load("a") == (0, 0) and not gates._gates  # idle clients are forgotten


async def test_a_waiting_read_gives_up_after_wait_s() -> None:
    gates = ClientGates(per_client=1, queue=4, wait_s=0.05)
    async with gates.gate("a"):
        with pytest.raises(Busy, match=r"did not finish within 0\.05 s"):
            async with gates.gate("a"):
                pass
        assert gates.load("a") == (1, 0)
    assert gates.load("a") == (0, 0)


async def test_a_repeat_of_a_read_in_progress_takes_no_new_place() -> None:
    """Fifty requests of one client for one read share its place (their query is shared);
    a read of another key from the same client is refused, the queue being zero."""
    gates = ClientGates(per_client=1, queue=0, wait_s=5)
    release = asyncio.Event()

    async def read(key: str | None) -> None:
        async with gates.gate("a", key):
            await release.wait()

    same = [asyncio.create_task(read("/history?from=x")) for _ in range(50)]
    await asyncio.sleep(0)
    assert gates.load("a") == (1, 0)
    with pytest.raises(Busy):
        await read("/history?from=y")
    with pytest.raises(Busy):
        await read(None)  # a report: always a read of its own
    release.set()
    await asyncio.gather(*same)
    assert gates.load("a") == (0, 0)


async def test_identical_reads_at_once_share_one_load() -> None:
    flights = SingleFlight[int]()
    calls = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return calls

    readers = [asyncio.create_task(flights.run("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*readers) == [1] * 50 and calls == 1
    assert flights.in_progress("k") == 0 and not flights._by_key


async def test_a_reader_never_joins_a_load_that_started_before_it() -> None:
    """Readers arriving while a load runs share the next one, which starts when it lands:
    their answer is never older than their request (at most two loads in progress)."""
    flights = SingleFlight[str]()
    version = "before"
    started: list[str] = []
    landing, took_off = asyncio.Event(), asyncio.Event()

    async def load() -> str:
        seen = version  # what the load's snapshot holds
        started.append(seen)
        took_off.set()
        if len(started) == 1:
            await landing.wait()
        return seen

    early = asyncio.create_task(flights.run("k", load))
    await took_off.wait()
    version = "after"  # a commit after the first load's snapshot, before the late readers
    assert not flights.boarding("k")  # the first has taken off: a new reader needs a new flight
    late = [asyncio.create_task(flights.run("k", load)) for _ in range(10)]
    await asyncio.sleep(0)
    assert flights.in_progress("k") == 2 and started == ["before"]  # the next one waits
    assert flights.boarding("k")
    landing.set()
    assert await early == "before"
    assert await asyncio.gather(*late) == ["after"] * 10
    assert started == ["before", "after"]  # ten late readers, one more load


async def test_distinct_keys_do_not_share_and_errors_reach_every_sharer() -> None:
    flights = SingleFlight[str]()
    gate = asyncio.Event()

    async def failing() -> str:
        await gate.wait()
        raise Busy("no slot")

    async def fine() -> str:
        return "ok"

    failed = [asyncio.create_task(flights.run("a", failing)) for _ in range(3)]
    assert await flights.run("b", fine) == "ok"
    gate.set()
    results = await asyncio.gather(*failed, return_exceptions=True)
    assert all(isinstance(r, Busy) for r in results)
    assert await flights.run("a", fine) == "ok"  # a failed flight is not remembered


async def test_a_reader_that_goes_away_does_not_cancel_the_others() -> None:
    flights = SingleFlight[str]()
    gate = asyncio.Event()

    async def load() -> str:
        await gate.wait()
        return "done"

    leaving = asyncio.create_task(flights.run("k", load))
    staying = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.gather(leaving, return_exceptions=True)
    gate.set()
    assert await staying == "done"
