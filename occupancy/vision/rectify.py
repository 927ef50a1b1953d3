"""Perspective rectification: every space polygon becomes a fixed-size patch.

A near bay may cover 180×80 pixels and a far one 40×20; warping each polygon
onto the same ``PATCH_W × PATCH_H`` rectangle normalises size and perspective,
so that the features downstream compare like with like on any camera.

Orientation: PKLot contours start at any corner and run either way round.
The quad is put in a canonical order (:func:`quad_of`): clockwise, first
side the *long* side higher in the image, so the patch always has the
space's long axis horizontal and the same way up whatever the contour. The
texture features are in addition invariant to a 180° turn and a mirror.

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
# a polygon thinner than this (pixels) is widened about its centre: a far-row
# space of a few pixels, a line or a point still warps to a patch and gets an answer
MIN_SIDE = 3.0

FloatArray = NDArray[np.float32]
ImageArray = NDArray[np.uint8]


def quad_of(space: Space) -> FloatArray:
    """Four corners of ``space`` in a canonical order (4-point polygons kept).

    The order does not depend on where the contour starts or which way it
    runs: clockwise on screen, first side the long side higher in the image.
    So a space always comes out the same way up, its long axis horizontal.
    Polygons with another number of points are replaced by their minimum
    area rectangle.
    """
    points = _usable_quad(np.asarray(space.polygon, dtype=np.float32))
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    if float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) < 0:
        points = points[::-1]  # one winding (clockwise on screen): a reversed contour is no mirror
    sides = np.linalg.norm(points - np.roll(points, -1, axis=0), axis=1)
    if sides[0] + sides[2] < sides[1] + sides[3]:
        points = np.roll(points, -1, axis=0)
    # of the two long sides, the one higher in the image first
    first = points[0] + points[1]
    third = points[2] + points[3]
    if (third[1], third[0]) < (first[1], first[0]):
        points = np.roll(points, 2, axis=0)
    return np.ascontiguousarray(points)


def _usable_quad(points: FloatArray) -> FloatArray:
    """The polygon's own 4 corners when they make a proper quad, else its minimum-area rectangle.

    Not a proper quad: another number of points, a self-crossing contour (its
    area under half its rectangle's), or a side under :data:`MIN_SIDE` pixels;
    the rectangle is then widened to at least ``MIN_SIDE`` on each side, so
    the perspective warp is never singular.
    """
    (cx, cy), (w, h), angle = cv2.minAreaRect(points)
    if len(points) == 4 and min(w, h) >= MIN_SIDE and abs(cv2.contourArea(points)) >= 0.5 * w * h:
        return points
    box = ((cx, cy), (max(w, MIN_SIDE), max(h, MIN_SIDE)), angle)
    return np.asarray(cv2.boxPoints(box), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Warp:
    """How to cut one space out of a frame pyramid, into a ``size`` (w, h) patch."""

    level: int
    matrix: NDArray[np.float64]
    size: tuple[int, int] = (PATCH_W, PATCH_H)


@dataclass(frozen=True, slots=True)
class PatchSpec:
    """Patch size (w × h pixels) and context margin around the polygon.

    ``margin`` is the context added on each side, as a fraction of the
    polygon's own length (along the patch width) and depth (along its
    height): ``(0.2, 0.1)`` shows a fifth of a space's length beyond each end.
    """

    width: int = PATCH_W
    height: int = PATCH_H
    margin: tuple[float, float] = (0.0, 0.0)

    def inner(self) -> FloatArray:
        """Where the polygon's corners land in the patch (pixel centres)."""
        w, h = self.width - 1, self.height - 1
        mx, my = self.margin
        x0 = w * mx / (1 + 2 * mx)
        y0 = h * my / (1 + 2 * my)
        return np.array([[x0, y0], [w - x0, y0], [w - x0, h - y0], [x0, h - y0]], dtype=np.float32)


FEATURE_PATCH = PatchSpec()  # the texture features' 48×24 patch, no margin


def _level_for(quad: FloatArray, inner_width: float) -> int:
    sides = np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)
    long_side = float(max(sides[0], sides[2]))
    level = 0
    while level < _MAX_LEVELS and long_side / 2 ** (level + 1) >= inner_width:
        level += 1
    return level


def plan_warps(layout: Layout, spec: PatchSpec = FEATURE_PATCH) -> tuple[Warp, ...]:
    """Precompute, once per layout, the pyramid level and homography of each space."""
    # corners on the outer pixel centres, so that a reversed contour gives the exact mirror
    target = spec.inner()
    inner_width = float(target[1, 0] - target[0, 0] + 1)
    warps = []
    for space in layout.spaces:
        quad = quad_of(space)
        level = _level_for(quad, inner_width)
        source = (quad / 2**level).astype(np.float32)
        matrix = np.asarray(cv2.getPerspectiveTransform(source, target), dtype=np.float64)
        warps.append(Warp(level, matrix, (spec.width, spec.height)))
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
    """Cut every space out of ``frame``: an ``N × h × w × 3`` uint8 array (all warps one size)."""
    levels = pyramid(frame, max((w.level for w in warps), default=0))
    width, height = warps[0].size if warps else (PATCH_W, PATCH_H)
    patches = np.empty((len(warps), height, width, 3), dtype=np.uint8)
    for index, warp in enumerate(warps):
        if warp.size != (width, height):
            raise FrameError("all warps of one rectify call must share a patch size")
        patches[index] = cv2.warpPerspective(
            levels[warp.level],
            warp.matrix,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return patches
