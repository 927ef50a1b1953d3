"""The shipped detector on the 147-frame day stream of an empty lot: no false changes."""

from __future__ import annotations

from pathlib import Path

from gateway.camera import CameraLoop, folder_frames
from occupancy.vision.detector import Detector
from occupancy.vision.evaluate import read_annotation
from occupancy.vision.smoothing import Hysteresis, SmoothingConfig


def test_empty_sunday_gives_initial_states_only(pklot: Path) -> None:
    # 24 Feb 2013 was a Sunday and the lot stayed empty all day (checked by eye);
    # the right answer is one initial "free" per space and nothing else.
    layout = read_annotation(next((pklot / "labelled" / "sequence0").glob("*.xml"))).layout
    loop = CameraLoop(
        folder_frames(pklot / "stream-2013-02-24"),
        layout,
        Detector.load(),
        Hysteresis(SmoothingConfig(confirm_frames=3)),
        device="ufpr05",
    )
    changes = list(loop)
    assert [c.state for c in changes] == ["free"] * len(layout.spaces)
    assert {c.space_id for c in changes} == set(layout.ids)
