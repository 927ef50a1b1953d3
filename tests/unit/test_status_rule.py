"""The status rule over ``boot`` (ingest.status) and the dead-letter rate cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.budget import DeadLetterBudget
from ingest.status import MAX_BOOT_JUMP, GatewayStatus, Verdict, decide
from occupancy.wire import MAX_BOOT

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
RESET = timedelta(minutes=10)


def _decide(stored: GatewayStatus, online: bool, boot: int, after: timedelta = timedelta(seconds=1)):  # type: ignore[no-untyped-def]
    return decide(stored, online=online, boot=boot, now=T0 + after, reset_after=RESET)


def test_newer_session_applies_and_stale_death_is_ignored() -> None:
    online5 = GatewayStatus(True, 5, T0)
    assert _decide(online5, False, 6) == (Verdict.APPLY, GatewayStatus(False, 6, T0 + timedelta(seconds=1)))
    assert _decide(online5, False, 4) == (Verdict.STALE, online5)
    assert _decide(online5, False, 4, after=timedelta(hours=5)) == (Verdict.STALE, online5)


def test_same_session_death_wins_and_repeats_change_nothing() -> None:
    online5, dead5 = GatewayStatus(True, 5, T0), GatewayStatus(False, 5, T0)
    assert _decide(online5, False, 5)[1] == GatewayStatus(False, 5, T0 + timedelta(seconds=1))
    assert _decide(dead5, True, 5) == (Verdict.STALE, dead5)  # a redelivered birth
    assert _decide(dead5, False, 5) == (Verdict.STALE, dead5)  # status_at is not moved


def test_boot_max_death_cannot_pin_gateway_offline() -> None:
    online5 = GatewayStatus(True, 5, T0)
    for boot in (MAX_BOOT, 5 + MAX_BOOT_JUMP + 1):
        assert _decide(online5, False, boot) == (Verdict.JUMP, online5)
        assert _decide(online5, False, boot, after=timedelta(days=30)) == (Verdict.JUMP, online5)
    assert _decide(GatewayStatus(False, -1, None), False, MAX_BOOT)[0] is Verdict.JUMP


def test_pinned_gateway_recovers_at_its_next_birth_after_a_quiet_spell() -> None:
    pinned = GatewayStatus(False, 5 + MAX_BOOT_JUMP, T0)  # the largest jump a death may make
    assert _decide(pinned, True, 6) == (Verdict.STALE, pinned)  # too soon: may be a stale birth
    verdict, now = _decide(pinned, True, 6, after=RESET)
    assert verdict is Verdict.APPLY and (now.online, now.boot) == (True, 6)
    assert _decide(now, False, 6, after=RESET)[1].online is False  # its will works again


def test_counter_reset_and_first_status_of_a_gateway() -> None:
    never = GatewayStatus(False, -1, None)
    assert _decide(never, True, 70_000)[0] is Verdict.APPLY  # first birth: any boot
    long_ago = GatewayStatus(True, 900, T0)
    assert _decide(long_ago, True, 1, after=timedelta(days=2))[0] is Verdict.APPLY  # new disk
    assert _decide(long_ago, True, 900 + 5 * MAX_BOOT_JUMP, after=RESET)[0] is Verdict.APPLY


def test_dead_letter_budget_allows_a_burst_then_the_rate_per_key() -> None:
    budget = DeadLetterBudget(rate_per_s=2.0, burst=3)
    assert [budget.admit("gw", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert budget.admit("other", 0.0)  # each gateway has its own bucket
    assert budget.admit("gw", 0.5) and not budget.admit("gw", 0.5)
    assert [budget.admit("gw", 100.0) for _ in range(4)] == [True, True, True, False]  # capped at burst
