"""Perspective rectification: every space polygon becomes a fixed-size patch.

A near bay may cover 180×80 pixels and a far one 40×20; warping each polygon
onto the same ``PATCH_W × PATCH_H`` rectangle normalises size and perspective,
so that the features downstream compare like with like on any camera.

Orientation: PKLot contours start at any corner and run either way round.
The quad is rotated so that its first side is a *long* side, so the patch
always has the space's long axis horizontal; what remains ambiguous (a 180°
turn, a mirror) is handled by features that are invariant to both flips.

Scale: a big polygon warped straight onto a small patch aliases. The frame is
first reduced with a Gaussian pyramid, and each space is sampled from the
level at which its polygon is closest to (but not smaller than) the patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from occupancy.vision.errors import FrameError
from occupancy.vision.layout import Layout, Space

PATCH_W = 48
PATCH_H = 24
_MAX_LEVELS = 3

FloatArray = NDArray[np.float32]
ImageArray = NDArray[np.uint8]


def quad_of(space: Space) -> FloatArray:
    """Four corners of ``space``, first side a long side (4-point polygons kept).

    Polygons with another number of points are replaced by their minimum
    area rectangle.
    """
    points = np.asarray(space.polygon, dtype=np.float32)
    if len(points) != 4:
        points = cv2.boxPoints(cv2.minAreaRect(points)).astype(np.float32)
    sides = np.linalg.norm(points - np.roll(points, -1, axis=0), axis=1)
    if sides[0] + sides[2] < sides[1] + sides[3]:
        points = np.roll(points, -1, axis=0)
    return np.ascontiguousarray(points)


@dataclass(frozen=True, slots=True)
class Warp:
    """How to cut one space out of a frame pyramid."""

    level: int
    matrix: NDArray[np.float64]


def _level_for(quad: FloatArray) -> int:
    sides = np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)
    long_side = float(max(sides[0], sides[2]))
    level = 0
    while level < _MAX_LEVELS and long_side / 2 ** (level + 1) >= PATCH_W:
        level += 1
    return level


def plan_warps(layout: Layout) -> tuple[Warp, ...]:
    """Precompute, once per layout, the pyramid level and homography of each space."""
    # corners on the outer pixel centres, so that a reversed contour gives the exact mirror
    w, h = PATCH_W - 1, PATCH_H - 1
    target = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    warps = []
    for space in layout.spaces:
        quad = quad_of(space)
        level = _level_for(quad)
        source = (quad / 2**level).astype(np.float32)
        matrix = np.asarray(cv2.getPerspectiveTransform(source, target), dtype=np.float64)
        warps.append(Warp(level, matrix))
    return tuple(warps)


def pyramid(frame: ImageArray, levels: int) -> list[ImageArray]:
    """The frame and ``levels`` successive ``pyrDown`` reductions of it."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise FrameError(f"want an H×W×3 uint8 BGR frame, got {frame.shape} {frame.dtype}")
    images = [frame]
    for _ in range(levels):
        images.append(np.asarray(cv2.pyrDown(images[-1]), dtype=np.uint8))
    return images


def rectify(frame: ImageArray, warps: tuple[Warp, ...]) -> ImageArray:
    """Cut every space out of ``frame``: an ``N × PATCH_H × PATCH_W × 3`` uint8 array."""
    levels = pyramid(frame, max((w.level for w in warps), default=0))
    patches = np.empty((len(warps), PATCH_H, PATCH_W, 3), dtype=np.uint8)
    for index, warp in enumerate(warps):
        patches[index] = cv2.warpPerspective(
            levels[warp.level],
            warp.matrix,
            (PATCH_W, PATCH_H),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return patches
