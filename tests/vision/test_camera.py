"""The gateway's camera loop over the frame sources."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.camera import (
    CameraError,
    CameraLoop,
    CaptureFrames,
    FileFrames,
    MemoryFrames,
    folder_frames,
    timestamp_from_name,
)
from occupancy.statemachine import Policy
from occupancy.vision.detector import Detector
from occupancy.vision.layout import Layout, Space
from occupancy.vision.loading import read_annotation

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load()


def test_loop_over_a_folder(pklot: Path, tmp_path: Path, detector: Detector) -> None:
    for frame in sorted((pklot / "stream-2013-02-24").glob("*.jpg"))[:3]:
        shutil.copy(frame, tmp_path)
    layout = read_annotation(next((pklot / "labelled" / "sequence0").glob("*.xml"))).layout
    loop = CameraLoop(folder_frames(tmp_path), layout, detector, Policy(confirm_readings=2), device="cam-1")
    changes = list(loop)
    ids = [c.space_id for c in changes]  # the initial states (dead-band spaces stay unknown)
    assert len(ids) >= 36
    assert len(set(ids)) == len(ids)
    assert set(ids) <= set(layout.ids)
    first = changes[0]
    assert first.device == "cam-1"
    assert first.state in ("free", "occupied")
    assert first.at == datetime(2013, 2, 24, 6, 15, tzinfo=UTC)
    assert 0.5 <= first.confidence <= 1.0


def _scene(car: bool) -> np.ndarray:
    frame = np.full((120, 200, 3), 90, dtype=np.uint8)
    if car:  # a bright body with dark windows: strong edges inside the bay
        cv2.rectangle(frame, (30, 40), (110, 80), (230, 230, 235), -1)
        cv2.rectangle(frame, (50, 45), (70, 75), (20, 20, 30), -1)
        cv2.rectangle(frame, (85, 45), (100, 75), (20, 20, 30), -1)
    return frame


def test_loop_over_memory_frames_reports_arrival(detector: Detector) -> None:
    layout = Layout((Space("A-1", ((25.0, 35.0), (115.0, 35.0), (115.0, 85.0), (25.0, 85.0))),))
    frames = [(T0 + timedelta(minutes=i), _scene(car=i >= 3)) for i in range(6)]
    loop = CameraLoop(MemoryFrames(frames), layout, detector, device="cam-x")  # 3 frames confirm
    changes = [(c.space_id, c.previous, c.state, c.at) for c in loop]
    assert changes == [  # stamped with the frame that confirmed the change (the third with a car)
        ("A-1", "unknown", "free", T0 + timedelta(minutes=0)),
        ("A-1", "free", "occupied", T0 + timedelta(minutes=5)),
    ]


def test_video_file_source(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG video")
    for _ in range(10):
        writer.write(np.zeros((48, 64, 3), dtype=np.uint8))
    writer.release()
    frames = list(CaptureFrames(str(path), every=2, start=T0))
    assert len(frames) == 5
    assert frames[0][0] == T0
    assert frames[1][0] == T0 + timedelta(seconds=0.4)


def test_sources_translate_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError):
        list(CaptureFrames(str(tmp_path / "missing.avi")))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(CameraError):
        list(FileFrames([tmp_path / "broken.jpg"]))
    with pytest.raises(CameraError):
        folder_frames(tmp_path / "nowhere")


def test_timestamp_from_name() -> None:
    assert timestamp_from_name(Path("2013-02-24_06_15_00.jpg")) == datetime(2013, 2, 24, 6, 15, tzinfo=UTC)
    assert timestamp_from_name(Path("frame-0001.jpg")) is None


@pytest.mark.parametrize(("low", "high"), [(0.1, 0.15), (0.3, 0.3), (0.5, 0.5), (0.0, 1.0)])
def test_the_machine_votes_as_the_band_decided(low: float, high: float) -> None:
    from gateway.camera import machine_score
    from occupancy.vision.detector import OperatingPoint, SpaceResult

    point, policy = OperatingPoint(low, high), Policy()
    for p in np.linspace(0.0, 1.0, 101):
        state = point.state(float(p))
        if state == "unknown":
            continue  # no reading at all: no vote
        score = machine_score(SpaceResult("a", float(p), state), low, high, (policy.leave, policy.enter))
        assert 0.0 <= score <= 1.0
        assert (score >= policy.enter) if state == "occupied" else (score <= policy.leave)
