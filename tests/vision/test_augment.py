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


@pytest.mark.parametrize("axis", [0, 1])
def test_squash_moves_pixels_and_polygons_together(axis: int) -> None:
    frame, layout = scene()
    out, moved = augment.squash(frame, layout, 0.4, axis)
    kept, shrunk = (0, 1) if axis == 0 else (1, 0)  # image shape is (height, width)
    assert out.shape[kept] == frame.shape[kept]
    assert out.shape[shrunk] == round(frame.shape[shrunk] * 0.4)
    assert inside_mean(out, moved) > 200


def test_squash_can_turn_a_bay_end_on() -> None:
    """Squashing the axis along a bay's length makes its short side the longest in the image."""

    def long_side_first(polygon: tuple[tuple[float, float], ...]) -> bool:
        p = np.asarray(polygon)
        return bool(np.linalg.norm(p[1] - p[0]) > np.linalg.norm(p[2] - p[1]))

    frame, layout = scene()  # the quad's first side (its length) runs along x
    assert long_side_first(layout.spaces[0].polygon)
    _, moved = augment.squash(frame, layout, 0.3, 0)
    assert not long_side_first(moved.spaces[0].polygon)


def test_flat_patches_have_no_texture() -> None:
    rng = np.random.default_rng(3)
    sources = rng.integers(60, 120, (5, 32, 64, 3), dtype=np.uint8)  # empty-bay-like grey texture
    out = augment.flat_patches(sources, 40, rng)
    assert out.shape == (40, 32, 64, 3) and out.dtype == np.uint8
    spread = out.reshape(40, -1, 3).std(axis=1).max(axis=1)
    coloured, clipped = spread[0::2], out[1::2]
    assert (coloured < 4.0).all()  # one colour and a little noise
    assert all(p.min() >= 250 or p.max() <= 6 for p in clipped)  # clipped to white or crushed to black


def test_outline_and_parallax_move_only_the_polygons() -> None:
    _, layout = scene()
    points = np.asarray(QUAD)
    tight = np.asarray(augment.resize_polygons(layout, 0.5).spaces[0].polygon)
    assert np.allclose(tight.mean(axis=0), points.mean(axis=0))  # about its centre
    assert np.allclose(tight - tight.mean(axis=0), 0.5 * (points - points.mean(axis=0)))
    lower = np.asarray(augment.parallax(layout, 0.4).spaces[0].polygon)
    height = points[:, 1].max() - points[:, 1].min()
    assert np.allclose(lower - points, [0.0, 0.4 * height])  # down the image, by its own height
