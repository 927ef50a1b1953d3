"""Reconnection backoff: exponential, bounded, jittered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.backoff import Backoff


def test_doubles_from_initial_up_to_the_bound() -> None:
    b = Backoff(initial_s=0.5, max_s=8)
    assert [b.cap(n) for n in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert b.cap(10_000) == 8  # a week-long outage does not overflow


@given(st.integers(0, 200), st.floats(0, 1, exclude_max=True))
def test_delay_is_between_half_the_cap_and_the_cap(attempt: int, rand: float) -> None:
    b = Backoff(initial_s=0.2, max_s=30)
    assert b.cap(attempt) / 2 <= b.delay(attempt, rand) <= b.cap(attempt)


def test_jitter_spreads_the_retries() -> None:
    b = Backoff(initial_s=1, max_s=60)
    assert b.delay(3, 0.0) == 4 and b.delay(3, 0.999) == pytest.approx(8, abs=0.01)


def test_bad_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial_s=0)
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial_s=5, max_s=1)
