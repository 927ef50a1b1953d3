"""The gateway outbox: seqs handed out once, events durable before publish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import OutboxError
from gateway.outbox import EventDraft, Outbox
from occupancy.ids import DeviceId, SpaceRef
from occupancy.model import EventKind, Source, SpaceState

T0 = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def draft(i: int = 0, **kw: object) -> EventDraft:
    fields: dict[str, object] = {
        "space": SpaceRef.parse(f"central-lot/A-{i % 48 + 1:03d}"),
        "state": SpaceState.OCCUPIED if i % 2 else SpaceState.FREE,
        "at": T0 + timedelta(seconds=i),
        "source": Source.SIMULATOR,
    }
    fields.update(kw)
    return EventDraft(**fields)  # type: ignore[arg-type]


def test_append_gives_consecutive_seqs_and_keeps_every_field(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        full = draft(3, confidence=0.97, device=DeviceId("cam-2"), kind=EventKind.HEARTBEAT)
        events = box.append([draft(1), draft(2), full])
        assert [e.seq for e in events] == [1, 2, 3]
        assert box.pending(10) == events
        assert box.pending(10)[2].at == full.at  # microseconds survive the disk
        assert box.depth() == 3
        assert box.last_seq == 3


def test_pending_is_oldest_first_with_limit_and_cursor(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        box.append(draft(i) for i in range(10))
        assert [e.seq for e in box.pending(3)] == [1, 2, 3]
        assert [e.seq for e in box.pending(3, after_seq=7)] == [8, 9, 10]
        assert box.pending(3, after_seq=10) == []


def test_remove_deletes_only_what_is_named(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        box.append(draft(i) for i in range(5))
        assert box.remove([2, 4, 99]) == 2
        assert [e.seq for e in box.pending(10)] == [1, 3, 5]
        assert box.remove([]) == 0
        assert box.depth() == 3


def test_empty_append_uses_no_seq(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        assert box.append([]) == []
        assert box.append([draft()])[0].seq == 1


def test_reopening_continues_seq_and_boot_and_keeps_pending(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        assert box.open_session() == 1
        box.append(draft(i) for i in range(4))
        box.remove([1, 2, 3, 4])  # everything acknowledged: the counter must not reset
        box.append([draft(9)])
    with Outbox(path) as box:
        assert box.open_session() == 2
        assert [e.seq for e in box.pending(10)] == [5]
        assert [e.seq for e in box.append([draft(), draft()])] == [6, 7]


def test_naive_time_is_refused_and_uses_no_seq(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        with pytest.raises(OutboxError):
            box.append([draft(), draft(at=datetime(2026, 1, 1))])
        assert box.depth() == 0
        assert box.append([draft()])[0].seq == 1


def test_unwritable_path_raises_outbox_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutboxError):
        Outbox(tmp_path / "file" / "o.sqlite")


def test_threads_appending_together_never_share_a_seq(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        seqs: list[int] = []
        lock = threading.Lock()

        def work() -> None:
            for _ in range(20):
                got = [e.seq for e in box.append([draft(), draft()])]
                with lock:
                    seqs.extend(got)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(seqs) == list(range(1, 161))


CRASHER = textwrap.dedent("""
    import os, sys
    from datetime import UTC, datetime
    from gateway.outbox import EventDraft, Outbox
    from occupancy.ids import SpaceRef
    from occupancy.model import SpaceState, Source
    box = Outbox(sys.argv[1])
    box.open_session()
    d = EventDraft(SpaceRef.parse("central-lot/A-001"), SpaceState.OCCUPIED,
                   datetime.now(UTC), Source.SIMULATOR)
    events = box.append([d] * 5)
    print(events[-1].seq, flush=True)
    sys.stdin.read()  # hold the connection open until killed
""")


def test_events_appended_before_a_sigkill_are_pending_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(path)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"5"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with Outbox(path) as box:
        assert [e.seq for e in box.pending(10)] == [1, 2, 3, 4, 5]
        assert box.open_session() == 2
        assert box.append([draft()])[0].seq == 6


HB = EventKind.HEARTBEAT


def kinds(box: Outbox) -> list[tuple[int, EventKind]]:
    return [(e.seq, e.kind) for e in box.pending(10_000)]


def test_full_outbox_drops_the_oldest_heartbeats_first(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", limit=6) as box:
        box.append([draft(0, kind=HB), draft(1), draft(2, kind=HB), draft(3, kind=HB)])
        box.append([draft(4), draft(5)])
        assert box.depth() == 6 and box.dropped() == (0, 0)
        box.append([draft(6), draft(7, kind=HB)])  # 8 > 6: heartbeats 1 and 3 go
        assert kinds(box) == [(2, EventKind.CHANGE), (4, HB), (5, EventKind.CHANGE),
                              (6, EventKind.CHANGE), (7, EventKind.CHANGE), (8, HB)]
        assert box.dropped() == (2, 0)
        assert box.depth() == 6


def test_only_changes_left_then_the_oldest_changes_go_and_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path, limit=3) as box:
        box.append([draft(0), draft(1, kind=HB), draft(2)])
        box.append([draft(3), draft(4)])  # 5 > 3: the heartbeat, then change 1
        assert [s for s, _ in kinds(box)] == [3, 4, 5]
        assert box.dropped() == (1, 1)
    with Outbox(path, limit=3) as box:  # the counts survive a restart
        assert box.dropped() == (1, 1) and box.depth() == 3
        box.append([draft(5, kind=HB)] * 4)  # incoming heartbeats can be dropped too
        assert [s for s, _ in kinds(box)] == [3, 4, 5]
        assert box.dropped() == (5, 1)


def test_depth_follows_appends_removes_and_trims(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", limit=50) as box:
        box.append(draft(i, kind=HB if i % 2 else EventKind.CHANGE) for i in range(80))
        assert box.depth() == 50 == len(box.pending(1000))
        box.remove([e.seq for e in box.pending(10)])
        assert box.depth() == 40 == len(box.pending(1000))
        assert box.dropped() == (30, 0)
