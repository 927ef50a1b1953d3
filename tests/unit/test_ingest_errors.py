"""Which failures ingest retries (a lost database) and which it contains (the data)."""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions._base as asyncpg_base
import pytest

from ingest.worker import is_transient


@pytest.mark.parametrize("exc", [ConnectionRefusedError(), TimeoutError(), OSError(),
                                 asyncpg.InterfaceError("connection is closed"),
                                 asyncpg.DeadlockDetectedError("deadlock detected"),
                                 asyncpg.TargetServerAttributeNotMatched("no read-write host")])
def test_a_lost_or_busy_database_is_retried(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [asyncpg_base.DataError("invalid input for query argument $1"),
                                 asyncpg.ForeignKeyViolationError("fk"),
                                 asyncpg.DataError("date out of range"),
                                 asyncpg.OutOfMemoryError("out of shared memory"),
                                 ValueError("x"), RuntimeError("bug")])
def test_what_a_message_holds_is_contained_never_retried(exc: BaseException) -> None:
    assert not is_transient(exc)
