"""The occupancy state machine: inputs in, states and events out, synchronously."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from occupancy.ids import SpaceRef
from occupancy.model import EventKind, SpaceState
from occupancy.statemachine import (
    TRANSITIONS,
    Machine,
    Observe,
    Output,
    Policy,
    Signal,
    StateMachineError,
    Tick,
    new_machine,
    step,
    with_policy,
)

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
A, B = SpaceRef.parse("lot/A-1"), SpaceRef.parse("lot/A-2")
F, OCC, U = SpaceState.FREE, SpaceState.OCCUPIED, SpaceState.UNKNOWN


def t(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def feed(m: Machine, *inputs: Observe | Tick) -> tuple[Machine, list[Output]]:
    out: list[Output] = []
    for i in inputs:
        m, o = step(m, i)
        out += o
    return m, out


def changes(out: list[Output]) -> list[tuple[SpaceRef, SpaceState, datetime]]:
    return [(o.space, o.state, o.at) for o in out if o.kind is EventKind.CHANGE]


def test_the_table_covers_every_state_and_signal() -> None:
    assert set(TRANSITIONS) == {(s, g) for s in SpaceState for g in Signal}


def test_first_reading_is_adopted_at_once_then_repeats_are_silent() -> None:
    m = new_machine([A, B], Policy(confirm_readings=3))
    m, out = feed(m, Observe(t(0), {A: 1.0, B: 0.0}), Observe(t(1), {A: 1.0, B: 0.0}))
    assert changes(out) == [(A, OCC, t(0)), (B, F, t(0))]
    assert (m.state(A), m.state(B)) == (OCC, F)


def test_debounce_needs_consecutive_readings_and_time() -> None:
    m = new_machine([A], Policy(confirm_readings=3, debounce_s=2.0))
    m, _ = feed(m, Observe(t(0), {A: 0.0}))
    m, out = feed(m, Observe(t(1), {A: 1.0}), Observe(t(2), {A: 1.0}))
    assert changes(out) == []  # two votes: not enough
    m, out = feed(m, Observe(t(2.5), {A: 1.0}))
    assert changes(out) == []  # three votes but only 1.5 s since the first
    m, out = feed(m, Observe(t(3), {A: 1.0}))
    assert changes(out) == [(A, OCC, t(3))]  # stamped with the confirming reading


def test_a_blip_resets_the_candidate() -> None:
    m = new_machine([A], Policy(confirm_readings=2))
    m, _ = feed(m, Observe(t(0), {A: 0.0}))
    m, out = feed(m, Observe(t(1), {A: 1.0}), Observe(t(2), {A: 0.0}), Observe(t(3), {A: 1.0}))
    assert changes(out) == []
    m, out = feed(m, Observe(t(4), {A: 1.0}))
    assert changes(out) == [(A, OCC, t(4))]


def test_hysteresis_dead_band_keeps_the_state_and_drops_the_candidate() -> None:
    m = new_machine([A], Policy(enter=0.7, leave=0.3, confirm_readings=2))
    m, _ = feed(m, Observe(t(0), {A: 0.1}))
    m, out = feed(m, Observe(t(1), {A: 0.8}), Observe(t(2), {A: 0.5}), Observe(t(3), {A: 0.8}))
    assert changes(out) == [] and m.state(A) is F
    m, out = feed(m, Observe(t(4), {A: 0.9}))
    assert changes(out) == [(A, OCC, t(4))]
    m, out = feed(m, *(Observe(t(5 + i), {A: 0.4 + i / 100}) for i in range(20)))
    assert changes(out) == []  # 0.4 … 0.59 is inside the band: no flapping


def test_silence_past_the_bound_makes_a_space_unknown_once() -> None:
    m = new_machine([A, B], Policy(stale_after_s=10, heartbeat_s=1000))
    m, _ = feed(m, Tick(t(0)), Observe(t(0), {A: 1.0, B: 1.0}))
    m, out = feed(m, Observe(t(5), {B: 0.0}), Tick(t(9.9)))
    assert changes(out) == [(B, F, t(5))]
    m, out = feed(m, Tick(t(10)))
    assert changes(out) == [(A, U, t(10))]
    m, out = feed(m, Tick(t(14)), Tick(t(20)))
    assert changes(out) == [(B, U, t(15 + 5))] and m.state(B) is U
    m, out = feed(m, Tick(t(40)))
    assert changes(out) == []  # already unknown: nothing more
    m, out = feed(m, Observe(t(41), {A: 0.0}))
    assert changes(out) == [(A, F, t(41))]  # back: adopted at once


def test_heartbeat_restates_every_space_at_its_period() -> None:
    m = new_machine([A, B], Policy(heartbeat_s=60, stale_after_s=1000))
    m, out = feed(m, Tick(t(0)))
    assert [(o.space, o.state, o.kind) for o in out] == [(A, U, EventKind.HEARTBEAT),
                                                          (B, U, EventKind.HEARTBEAT)]
    m, out = feed(m, Observe(t(1), {A: 1.0}), Tick(t(59)))
    assert [o.kind for o in out] == [EventKind.CHANGE]
    m, out = feed(m, Tick(t(60)))
    assert [(o.space, o.state, o.at) for o in out] == [(A, OCC, t(60)), (B, U, t(60))]
    assert {o.kind for o in out} == {EventKind.HEARTBEAT}


def test_a_new_policy_shortens_the_next_heartbeat() -> None:
    m = new_machine([A], Policy(heartbeat_s=300))
    m, _ = feed(m, Tick(t(0)), Tick(t(10)))
    m = with_policy(m, Policy(heartbeat_s=5))
    m, out = feed(m, Tick(t(14)))
    assert out == []
    m, out = feed(m, Tick(t(15)))
    assert [o.kind for o in out] == [EventKind.HEARTBEAT]


@pytest.mark.parametrize(
    "bad",
    [Observe(t(-1), {A: 1.0}), Tick(t(-1)), Observe(t(1), {SpaceRef.parse("lot/Z"): 1.0}),
     Observe(t(1), {A: 1.5})],
)
def test_illegal_inputs_raise(bad: Observe | Tick) -> None:
    m, _ = feed(new_machine([A], Policy()), Tick(t(0)))
    with pytest.raises(StateMachineError):
        step(m, bad)


def test_bad_policy_is_refused() -> None:
    with pytest.raises(StateMachineError):
        Policy(enter=0.3, leave=0.6)
    with pytest.raises(StateMachineError):
        Policy(confirm_readings=0)


@given(st.lists(st.one_of(st.floats(0, 1), st.none()), max_size=60))
def test_never_two_consecutive_changes_to_the_same_state(scores: list[float | None]) -> None:
    m = new_machine([A], Policy(confirm_readings=2, stale_after_s=3, heartbeat_s=1000))
    out: list[Output] = []
    for i, s in enumerate(scores):
        m, o = step(m, Tick(t(i)) if s is None else Observe(t(i), {A: s}))
        out += o
    states = [o.state for o in out if o.kind is EventKind.CHANGE]
    assert all(a is not b for a, b in itertools.pairwise(states))
    assert [o.at for o in out] == sorted(o.at for o in out)
