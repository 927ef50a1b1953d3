"""The training script's "other camera" transforms (scripts/augment.py): labels stay true.

Every geometric transform must move the polygons exactly as it moves the
pixels, or the network learns from mislabelled patches: a white filled
polygon on black must still be under its moved polygon.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from occupancy.vision.layout import Layout, Space

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import augment

QUAD = ((120.0, 80.0), (200.0, 95.0), (190.0, 130.0), (112.0, 118.0))


def scene() -> tuple[np.ndarray, Layout]:
    frame = np.zeros((240, 320, 3), dtype=np.uint8)
    cv2.fillPoly(frame, [np.round(np.array(QUAD)).astype(np.int32)], (255, 255, 255))
    return frame, Layout((Space("1", QUAD),))


def inside_mean(frame: np.ndarray, layout: Layout) -> float:
    mask = np.zeros(frame.shape[:2], dtype=np.uint8)
    points = np.asarray(layout.spaces[0].polygon)
    centre = points.mean(axis=0)
    shrunk = centre + 0.7 * (points - centre)  # away from the blurred edges
    cv2.fillPoly(mask, [np.round(shrunk).astype(np.int32)], 1)
    return float(frame[mask > 0].mean())


@pytest.mark.parametrize("degrees", [-35.0, 20.0, 90.0])
def test_roll_moves_pixels_and_polygons_together(degrees: float) -> None:
    frame, layout = scene()
    out, moved = augment.rotate(frame, layout, degrees)
    assert inside_mean(out, moved) > 240
    assert out.shape[0] >= frame.shape[0] or out.shape[1] >= frame.shape[1]  # grown, nothing cut off


def test_scale_and_tilt_move_pixels_and_polygons_together() -> None:
    frame, layout = scene()
    small, moved = augment.rescale(frame, layout, 0.4)
    assert inside_mean(small, moved) > 200
    tilted, moved = augment.tilt(frame, layout, 0.15, np.random.default_rng(0))
    assert inside_mean(tilted, moved) > 240


def test_boxes_hold_the_polygon() -> None:
    _, layout = scene()
    (box,) = augment.axis_aligned(layout).spaces
    assert box.polygon == ((112.0, 80.0), (200.0, 80.0), (200.0, 130.0), (112.0, 130.0))


def test_photometric_changes_keep_the_frame_and_do_what_they_say() -> None:
    rng = np.random.default_rng(1)
    frame = np.full((120, 160, 3), 128, dtype=np.uint8)
    for change in (augment.night, augment.glare, augment.rain, augment.cast_shadows):
        out = change(frame, rng)
        assert out.shape == frame.shape and out.dtype == np.uint8
    assert augment.night(frame, rng).mean() < 70
    assert augment.glare(frame, rng).mean() > frame.mean()


def test_unseen_proxies_keep_every_space() -> None:
    _, layout = scene()
    frame = np.full((240, 320, 3), 100, dtype=np.uint8)
    for name, transform in augment.UNSEEN.items():
        out, moved = transform(frame, layout, np.random.default_rng(2))
        assert moved.ids == layout.ids, name
        assert out.ndim == 3 and out.dtype == np.uint8, name
