"""Hysteresis: scripted score sequences → expected confirmed changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from occupancy.vision.errors import VisionError
from occupancy.vision.smoothing import Hysteresis, SmoothingConfig

T0 = datetime(2013, 2, 24, 6, 0, tzinfo=UTC)


def run(scores: list[float], config: SmoothingConfig, step_s: float = 300) -> list[tuple[int, str, str]]:
    """Feed one space's scores, one frame every ``step_s``; return (frame, from, to)."""
    machine = Hysteresis(config)
    out = []
    for i, p in enumerate(scores):
        for change in machine.step({"A-1": p}, T0 + timedelta(seconds=i * step_s)):
            out.append((i, change.previous, change.state))
    return out


def test_first_confirmed_observation_is_the_initial_state() -> None:
    assert run([0.1, 0.1, 0.1], SmoothingConfig(confirm_frames=2)) == [(1, "unknown", "free")]


def test_car_arrives_and_leaves() -> None:
    scores = [0.1, 0.1, 0.9, 0.95, 0.9, 0.2, 0.1, 0.1]
    assert run(scores, SmoothingConfig(confirm_frames=2)) == [
        (1, "unknown", "free"),
        (3, "free", "occupied"),
        (6, "occupied", "free"),
    ]


def test_walking_person_blip_is_ignored() -> None:
    scores = [0.1, 0.1, 0.1, 0.85, 0.1, 0.1, 0.1]  # one frame of someone in the bay
    assert run(scores, SmoothingConfig(confirm_frames=2)) == [(1, "unknown", "free")]


def test_passing_shadow_is_ignored() -> None:
    # a cloud shadow makes the score wobble across the dead band for two frames
    scores = [0.9, 0.9, 0.9, 0.45, 0.3, 0.25, 0.55, 0.9, 0.9]
    assert run(scores, SmoothingConfig(confirm_frames=3)) == [(2, "unknown", "occupied")]


def test_dead_band_holds_the_state() -> None:
    scores = [0.9, 0.9, 0.5, 0.5, 0.5, 0.59, 0.41, 0.5]
    assert run(scores, SmoothingConfig(confirm_frames=2)) == [(1, "unknown", "occupied")]


def test_minimum_duration_in_seconds() -> None:
    config = SmoothingConfig(confirm_frames=1, min_seconds=60)
    # frames every 20 s: a 40 s visit is dropped, a 60 s one is kept
    scores = [0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9]
    changes = run(scores, config, step_s=20)
    assert changes == [(3, "unknown", "free"), (11, "free", "occupied")]


def test_change_time_is_when_it_began() -> None:
    machine = Hysteresis(SmoothingConfig(confirm_frames=3))
    changes = []
    for i, p in enumerate([0.9, 0.8, 0.7]):
        changes += machine.step({"A-1": p}, T0 + timedelta(minutes=i))
    (change,) = changes
    assert change.at == T0
    assert change.probability == pytest.approx(0.8)
    assert machine.state("A-1") == "occupied"


def test_spaces_are_independent() -> None:
    machine = Hysteresis(SmoothingConfig(confirm_frames=1))
    first = machine.step({"a": 0.9, "b": 0.1}, T0)
    assert {(c.space_id, c.state) for c in first} == {("a", "occupied"), ("b", "free")}
    assert machine.step({"a": 0.9, "b": 0.1}, T0) == []


@pytest.mark.parametrize("kwargs", [{"enter": 0.3, "leave": 0.6}, {"confirm_frames": 0}, {"min_seconds": -1}])
def test_bad_config(kwargs: dict[str, float]) -> None:
    with pytest.raises(VisionError):
        SmoothingConfig(**kwargs)  # type: ignore[arg-type]
