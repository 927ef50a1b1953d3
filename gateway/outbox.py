"""The gateway's disk outbox: events wait here until the broker acknowledged them.

How this works: one SQLite file in WAL mode holds two counters (``boot``,
``seq``) and the table of pending events. ``append`` gives each draft the
next ``seq`` and stores the events and the new counter in ONE transaction,
so an event is on disk before anyone can publish it and a ``seq`` handed out
is never handed out again, not even after a crash. ``remove`` deletes events
once their PUBACK arrived.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``. Under WAL,
``NORMAL`` survives a killed process but may lose the last commits on a power
cut; a lost commit would mean a published event missing from the outbox and,
worse, its ``seq`` handed out again after the reboot (the counter rolls
back). Edge boxes lose power, so every commit is fsynced; callers batch
(``append`` takes a list) to pay one fsync per batch, not per event.

Size bound (``limit`` events, optional): when an append would leave more
than ``limit`` events pending, the oldest pending **heartbeats** are deleted
first (a heartbeat only restates a state; the next one restates it again),
and only when no heartbeat is left the oldest **changes** (the newest ones
carry the current state). Every dropped event is counted, durably, in the
same transaction (``dropped()``). Size the limit so that the second case
never happens: a change dropped is an observation lost.

Thread safety: one connection (``check_same_thread=False``) behind a lock;
every method holds the lock for its whole transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from gateway import OutboxError
from gateway.devices import EventDraft as EventDraft  # where drafts are made; kept here for callers
from occupancy.ids import DeviceId, SpaceRef
from occupancy.model import EventKind, OccupancyEvent, Source, SpaceState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('boot', 0), ('seq', 0),
    ('dropped_heartbeats', 0), ('dropped_changes', 0);
CREATE TABLE IF NOT EXISTS pending (
    seq        INTEGER PRIMARY KEY,
    space      TEXT NOT NULL,
    state      TEXT NOT NULL,
    at         TEXT NOT NULL,
    source     TEXT NOT NULL,
    confidence REAL,
    device     TEXT,
    kind       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_kind ON pending (kind, seq);
"""

_COLUMNS = "seq, space, state, at, source, confidence, device, kind"
_Row = tuple[int, str, str, str, str, float | None, str | None, str]


class Outbox:
    """Pending events and the ``boot``/``seq`` counters of one gateway, on disk."""

    def __init__(self, path: Path | str, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise OutboxError(f"outbox limit must be >= 1, got {limit}")
        self.path = Path(path)
        self.limit = limit
        self._lock = threading.RLock()  # re-entered to update the cached depth after a commit
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.executescript(_SCHEMA)
            self._depth = int(self._con.execute("SELECT count(*) FROM pending").fetchone()[0])
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc

    # ---- counters ----------------------------------------------------------

    def open_session(self) -> int:
        """Count a gateway start: increment ``boot`` durably and return it."""
        with self._transaction() as cur:
            boot = self._counter(cur, "boot") + 1
            cur.execute("UPDATE counters SET value = ? WHERE name = 'boot'", (boot,))
        return boot

    @property
    def boot(self) -> int:
        with self._transaction() as cur:
            return self._counter(cur, "boot")

    @property
    def last_seq(self) -> int:
        """The highest ``seq`` ever handed out (0 before the first event)."""
        with self._transaction() as cur:
            return self._counter(cur, "seq")

    # ---- events ------------------------------------------------------------

    def append(self, drafts: Iterable[EventDraft]) -> list[OccupancyEvent]:
        """Give the drafts the next seqs and store them, all in one durable commit."""
        drafts = list(drafts)
        if not drafts:
            return []
        with self._lock:
            with self._transaction() as cur:
                first = self._counter(cur, "seq") + 1
                events = [_with_seq(d, first + i) for i, d in enumerate(drafts)]
                cur.executemany(
                    f"INSERT INTO pending ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [_to_row(e) for e in events],
                )
                cur.execute("UPDATE counters SET value = ? WHERE name = 'seq'", (events[-1].seq,))
                depth = self._depth + len(events)
                depth -= self._trim(cur, depth)
            self._depth = depth
        return events

    def dropped(self) -> tuple[int, int]:
        """``(heartbeats, changes)`` dropped by the size bound over the outbox's life."""
        with self._transaction() as cur:
            return (self._counter(cur, "dropped_heartbeats"), self._counter(cur, "dropped_changes"))

    def pending(self, limit: int, after_seq: int | None = None) -> list[OccupancyEvent]:
        """Up to ``limit`` pending events, oldest first, with ``seq > after_seq``."""
        with self._transaction() as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM pending WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq or 0, limit),
            ).fetchall()
        return [_from_row(r) for r in rows]

    def remove(self, seqs: Sequence[int]) -> int:
        """Delete acknowledged events; returns how many were still there."""
        if not seqs:
            return 0
        with self._lock:
            with self._transaction() as cur:
                before = self._con.total_changes
                cur.executemany("DELETE FROM pending WHERE seq = ?", [(s,) for s in seqs])
                removed = self._con.total_changes - before
            self._depth -= removed
        return removed

    def depth(self) -> int:
        """How many events wait for a PUBACK (kept in memory: no query)."""
        return self._depth

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- helpers -----------------------------------------------------------

    def _trim(self, cur: sqlite3.Cursor, depth: int) -> int:
        """Apply the size bound inside the caller's transaction; returns how many went."""
        excess = 0 if self.limit is None else depth - self.limit
        gone = 0
        for kind, counter in ((EventKind.HEARTBEAT, "dropped_heartbeats"),
                              (EventKind.CHANGE, "dropped_changes")):
            if excess - gone <= 0:
                break
            cur.execute(
                "DELETE FROM pending WHERE seq IN "
                "(SELECT seq FROM pending WHERE kind = ? ORDER BY seq LIMIT ?)",
                (kind.value, excess - gone))
            n = cur.rowcount
            if n > 0:
                cur.execute("UPDATE counters SET value = value + ? WHERE name = ?", (n, counter))
                gone += n
        return gone

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            try:
                cur = self._con.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {self.path}: {exc}") from exc

    @staticmethod
    def _counter(cur: sqlite3.Cursor, name: str) -> int:
        return int(cur.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])


def _with_seq(draft: EventDraft, seq: int) -> OccupancyEvent:
    return OccupancyEvent(
        seq=seq, space=draft.space, state=draft.state, at=draft.at, source=draft.source,
        confidence=draft.confidence, device=draft.device, kind=draft.kind,
    )


def _to_row(e: OccupancyEvent) -> _Row:
    if e.at.tzinfo is None:
        raise OutboxError(f"event {e.seq}: naive datetime")
    at = e.at.astimezone(UTC).isoformat(timespec="microseconds")
    device = None if e.device is None else str(e.device)
    return (e.seq, str(e.space), e.state.value, at, e.source.value, e.confidence, device,
            e.kind.value)


def _from_row(row: _Row) -> OccupancyEvent:
    seq, space, state, at, source, confidence, device, kind = row
    return OccupancyEvent(
        seq=seq, space=SpaceRef.parse(space), state=SpaceState(state),
        at=datetime.fromisoformat(at), source=Source(source), confidence=confidence,
        device=None if device is None else DeviceId(device), kind=EventKind(kind),
    )
