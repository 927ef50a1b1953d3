"""A camera's frames through the occupancy state machine: scripted scores → confirmed changes.

The camera has no debounce of its own any more: ``CameraLoop`` feeds each
frame's scores as one reading to ``occupancy.statemachine`` (the machine bay
sensors feed), with the camera's confirm-frames / seconds as the policy's
``confirm_readings`` / ``debounce_s``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.camera import CAMERA_POLICY, CameraLoop, MemoryFrames
from occupancy.ids import SpaceRef
from occupancy.statemachine import Policy, StateMachineError
from occupancy.vision.detector import Detector
from occupancy.vision.layout import Layout, Space

T0 = datetime(2013, 2, 24, 6, 0, tzinfo=UTC)
BAY = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0))


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load()


def loop(detector: Detector, policy: Policy, ids: tuple[str, ...] = ("A-1",)) -> CameraLoop:
    layout = Layout(tuple(Space(i, BAY) for i in ids), site_id="lot")
    return CameraLoop(MemoryFrames([]), layout, detector, policy, device="cam-1")


def run(detector: Detector, scores: list[float], policy: Policy,
        step_s: float = 300) -> list[tuple[int, str, str]]:
    """Feed one space's scores, one frame every ``step_s``; return (frame, from, to)."""
    cam = loop(detector, policy)
    ref = SpaceRef.parse("lot/A-1")
    out = []
    for i, p in enumerate(scores):
        for change in cam.observe(T0 + timedelta(seconds=i * step_s), {ref: p}):
            out.append((i, change.previous, change.state))
    return out


def test_the_camera_default_confirms_over_three_frames() -> None:
    assert CAMERA_POLICY.confirm_readings == 3


def test_first_reading_is_the_initial_state(detector: Detector) -> None:
    # from unknown there is no state to protect: the first vote is adopted at once
    assert run(detector, [0.1, 0.1, 0.1], Policy(confirm_readings=2)) == [(0, "unknown", "free")]


def test_car_arrives_and_leaves(detector: Detector) -> None:
    scores = [0.1, 0.1, 0.9, 0.95, 0.9, 0.2, 0.1, 0.1]
    assert run(detector, scores, Policy(confirm_readings=2)) == [
        (0, "unknown", "free"),
        (3, "free", "occupied"),
        (6, "occupied", "free"),
    ]


def test_walking_person_blip_is_ignored(detector: Detector) -> None:
    scores = [0.1, 0.1, 0.1, 0.85, 0.1, 0.1, 0.1]  # one frame of someone in the bay
    assert run(detector, scores, Policy(confirm_readings=2)) == [(0, "unknown", "free")]


def test_passing_shadow_is_ignored(detector: Detector) -> None:
    # a cloud shadow makes the score wobble across the dead band for a few frames
    scores = [0.9, 0.9, 0.9, 0.45, 0.3, 0.25, 0.55, 0.9, 0.9]
    assert run(detector, scores, Policy(confirm_readings=3)) == [(0, "unknown", "occupied")]


def test_dead_band_holds_the_state(detector: Detector) -> None:
    scores = [0.9, 0.9, 0.5, 0.5, 0.5, 0.59, 0.41, 0.5]
    assert run(detector, scores, Policy(confirm_readings=2)) == [(0, "unknown", "occupied")]


def test_minimum_duration_in_seconds(detector: Detector) -> None:
    # frames every 20 s: a 40 s visit is dropped, a 60 s one is kept
    scores = [0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9]
    changes = run(detector, scores, Policy(confirm_readings=1, debounce_s=60), step_s=20)
    assert changes == [(0, "unknown", "free"), (11, "free", "occupied")]


def test_a_change_carries_the_time_and_score_of_the_confirming_frame(detector: Detector) -> None:
    cam = loop(detector, Policy(confirm_readings=3))
    ref = SpaceRef.parse("lot/A-1")
    changes = []
    for i, p in enumerate([0.1, 0.9, 0.8, 0.7]):
        changes += cam.observe(T0 + timedelta(minutes=i), {ref: p})
    assert [(c.state, c.at) for c in changes] == [("free", T0), ("occupied", T0 + timedelta(minutes=3))]
    assert changes[1].probability == pytest.approx(0.7)
    assert changes[1].confidence == pytest.approx(0.7)
    assert changes[0].confidence == pytest.approx(0.9)
    assert str(cam.machine.state(ref)) == "occupied"


def test_spaces_are_independent_and_a_late_frame_counts_at_the_latest_time(detector: Detector) -> None:
    cam = loop(detector, Policy(confirm_readings=1), ("a", "b"))
    a, b = SpaceRef.parse("lot/a"), SpaceRef.parse("lot/b")
    first = cam.observe(T0, {a: 0.9, b: 0.1})
    assert {(c.space_id, c.state) for c in first} == {("a", "occupied"), ("b", "free")}
    assert cam.observe(T0, {a: 0.9, b: 0.1}) == []
    (late,) = cam.observe(T0 - timedelta(minutes=5), {a: 0.1})
    assert late.at == T0


@pytest.mark.parametrize("kwargs", [{"enter": 0.3, "leave": 0.6}, {"confirm_readings": 0},
                                    {"debounce_s": -1}])
def test_bad_policy(kwargs: dict[str, float]) -> None:
    with pytest.raises(StateMachineError):
        Policy(**kwargs)  # type: ignore[arg-type]
