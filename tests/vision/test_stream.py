"""The shipped detector and the occupancy state machine on the 147-frame day stream of an
empty lot: no false changes."""

from __future__ import annotations

from pathlib import Path

from gateway.camera import CameraLoop, folder_frames
from occupancy.statemachine import Policy
from occupancy.vision.detector import Detector
from occupancy.vision.loading import read_annotation


def test_empty_sunday_gives_initial_states_only(pklot: Path) -> None:
    # 24 Feb 2013 was a Sunday and the lot stayed empty all day (checked by eye);
    # the right answer is one initial "free" per space and nothing else.
    layout = read_annotation(next((pklot / "labelled" / "sequence0").glob("*.xml"))).layout
    loop = CameraLoop(
        folder_frames(pklot / "stream-2013-02-24"),
        layout,
        Detector.load(),
        Policy(confirm_readings=3),  # the camera default: three frames confirm a change
        device="ufpr05",
    )
    changes = list(loop)
    assert [c.state for c in changes] == ["free"] * len(layout.spaces)
    assert {c.space_id for c in changes} == set(layout.ids)
