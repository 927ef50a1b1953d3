"""Retry delays (exponential, bounded, jittered) and bounded retries, as every retry loop uses them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from occupancy.backoff import Backoff, Retry


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


def test_retry_waits_by_the_schedule_and_gives_up_past_its_bound() -> None:
    retry = Retry(Backoff(initial_s=1, max_s=4), give_up_after_s=10)
    waits = []
    now = 100.0
    while (delay := retry.failed(now, 1.0)) is not None:
        waits.append(delay)
        now += delay
    assert waits == [1, 2, 4, 3]  # the last wait ends at the bound, 10 s after the first failure
    assert retry.attempts == 4


def test_retry_without_a_bound_never_gives_up() -> None:
    retry = Retry(Backoff(initial_s=1, max_s=4))
    assert [retry.failed(1e9 * n, 1.0) for n in range(5)] == [1, 2, 4, 4, 4]


def test_a_success_starts_the_next_run_afresh() -> None:
    retry = Retry(Backoff(initial_s=1, max_s=4), give_up_after_s=5)
    assert retry.failed(0, 1.0) == 1 and retry.failed(1, 1.0) == 2
    retry.succeeded()
    assert retry.failed(1000, 1.0) == 1  # counted from this failure, from the first step
    assert retry.attempts == 1


def test_a_zero_bound_gives_up_at_the_first_failure() -> None:
    assert Retry(Backoff(), give_up_after_s=0).failed(5.0, 0.0) is None
