"""Hand-made, camera-independent features of rectified space patches.

How this works: every space is a ``PATCH_H × PATCH_W`` patch (see
:mod:`occupancy.vision.rectify`) with its long axis horizontal but an unknown
180° turn or mirror. All features are therefore computed on *folded*
coordinates (distance from the patch centre along each axis) and on
*folded* gradient orientations (``atan2(|gy|, |gx|)``), which makes them
exactly invariant to both flips.

Illumination is normalised twice: shape features (orientation histograms,
local binary patterns) use only ratios inside the patch, and contrast
features are measured in units of the patch's own brightness (Weber
contrast), so that a dark dusk frame and a bright noon frame of the same car
give similar numbers. Nothing depends on the camera, the lot or the space.

All functions take a batch: ``N × H × W × 3`` uint8 BGR → ``N × D`` float32.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from occupancy.vision.rectify import PATCH_H, PATCH_W

F32 = NDArray[np.float32]
FEATURES_VERSION = "fold-hog4x6+lbp10+contrast8+edges6+colour5+maps33/v2"
_EPS = 1e-3
_ORIENT_BINS = 4
_X_BANDS = 3
_Y_BANDS = 2
_LBP_BINS = 10
_BIN_TANGENTS = tuple(float(np.tan((k + 1) * np.pi / 2 / _ORIENT_BINS)) for k in range(_ORIENT_BINS - 1))


def _folded_coords() -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    ys, xs = np.mgrid[0:PATCH_H, 0:PATCH_W].astype(np.float32)
    fx = np.abs(xs + 0.5 - PATCH_W / 2) / (PATCH_W / 2)
    fy = np.abs(ys + 0.5 - PATCH_H / 2) / (PATCH_H / 2)
    cell = np.minimum((fx * _X_BANDS).astype(np.int64), _X_BANDS - 1) * _Y_BANDS
    cell += np.minimum((fy * _Y_BANDS).astype(np.int64), _Y_BANDS - 1)
    inner = (fx < 0.7) & (fy < 0.7)
    return cell.ravel(), inner.ravel()


_CELL, _INNER = _folded_coords()


def _symmetric_sample() -> NDArray[np.int64]:
    ys, xs = np.mgrid[0:PATCH_H, 0:PATCH_W]
    keep = (np.minimum(xs, PATCH_W - 1 - xs) % 3 == 0) & (np.minimum(ys, PATCH_H - 1 - ys) % 2 == 0)
    return np.flatnonzero(keep.ravel())


_SAMPLE = _symmetric_sample()
_CELLS = _X_BANDS * _Y_BANDS


def _quantiles(values: F32, qs: tuple[float, ...]) -> F32:
    """Row-wise quantiles by partial sort on a flip-symmetric sixth of the pixels (fast)."""
    sample = values[:, _SAMPLE]
    last = sample.shape[1] - 1
    kth = [round(q * last) for q in qs]
    part = np.partition(sample, kth, axis=1)
    return part[:, kth]


def _median(values: F32) -> F32:
    return _quantiles(values, (0.5,))[:, 0]


def _gradients(grey: F32) -> tuple[F32, F32, F32]:
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
    gy[:, 1:-1, :] = grey[:, 2:, :] - grey[:, :-2, :]
    magnitude = np.sqrt(gx * gx + gy * gy)
    return np.abs(gx), np.abs(gy), magnitude


def _orientation_cells(ax: F32, ay: F32, magnitude: F32) -> F32:
    """HOG-like histogram on folded cells and folded orientations, L2-Hys normalised."""
    n = ax.shape[0]
    obin = np.zeros(ax.shape, dtype=np.int64)
    for tangent in _BIN_TANGENTS:
        obin += ay > ax * tangent
    index = (_CELL[None, :] * _ORIENT_BINS + obin.reshape(n, -1)).ravel()
    index += np.repeat(np.arange(n) * _CELLS * _ORIENT_BINS, PATCH_H * PATCH_W)
    counts = np.bincount(index, magnitude.ravel(), minlength=n * _CELLS * _ORIENT_BINS)
    hist: F32 = counts.reshape(n, -1).astype(np.float32)
    hist /= np.linalg.norm(hist, axis=1, keepdims=True) + _EPS
    hist = np.minimum(hist, 0.2)
    hist /= np.linalg.norm(hist, axis=1, keepdims=True) + _EPS
    return hist


def _lbp(grey: F32, threshold: F32) -> F32:
    """Rotation-invariant uniform LBP(8, 1) histogram; ``threshold`` per patch ignores noise."""
    centre = grey[:, 1:-1, 1:-1]
    shifts = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]
    h, w = PATCH_H - 2, PATCH_W - 2
    t = threshold[:, None, None]
    bits = np.stack([grey[:, dy : dy + h, dx : dx + w] > centre + t for dy, dx in shifts], axis=1)
    ones = bits.sum(axis=1)
    transitions = (bits != np.roll(bits, 1, axis=1)).sum(axis=1)
    code = np.where(transitions <= 2, ones, _LBP_BINS - 1)
    n = grey.shape[0]
    index = (code + np.arange(n)[:, None, None] * _LBP_BINS).ravel()
    hist = np.bincount(index, minlength=n * _LBP_BINS).reshape(n, _LBP_BINS)
    return (hist / float(h * w)).astype(np.float32)


def _contrast(grey: F32, magnitude: F32) -> F32:
    """Weber-style contrast: spreads and edge strengths relative to patch brightness."""
    flat = grey.reshape(grey.shape[0], -1)
    mag = magnitude.reshape(grey.shape[0], -1)
    brightness = _median(flat) + 0.05
    inner = flat[:, _INNER]
    rows = grey.mean(axis=2).std(axis=1)
    cols = grey.mean(axis=1).std(axis=1)
    q = _quantiles(flat, (0.1, 0.9))
    spread = q[:, 1] - q[:, 0]
    columns = [
        flat.std(axis=1) / brightness,
        inner.std(axis=1) / brightness,
        spread / brightness,
        rows / brightness,
        cols / brightness,
        mag.mean(axis=1) / brightness,
        mag[:, _INNER].mean(axis=1) / brightness,
        _quantiles(mag, (0.9,))[:, 0] / brightness,
    ]
    values = np.stack(columns, axis=1)
    return np.log(values + 0.01).astype(np.float32)


def _edge_density(magnitude: F32, grey: F32) -> F32:
    flat = grey.reshape(grey.shape[0], -1)
    mag = magnitude.reshape(grey.shape[0], -1)
    brightness = _median(flat)[:, None] + 0.05
    rel = mag * (1.0 / brightness)
    return np.stack(
        [(rel > k).mean(axis=1) for k in (0.1, 0.2, 0.4)]
        + [(rel[:, _INNER] > k).mean(axis=1) for k in (0.1, 0.2, 0.4)],
        axis=1,
    ).astype(np.float32)


def _planes(patches: NDArray[np.uint8]) -> tuple[F32, F32, F32]:
    n = patches.shape[0]
    flat = patches.reshape(n, -1, 3)
    return tuple(flat[:, :, c].astype(np.float32) for c in range(3))  # type: ignore[return-value]


def _saturation(b: F32, g: F32, r: F32) -> F32:
    high = np.maximum(np.maximum(b, g), r)
    low = np.minimum(np.minimum(b, g), r)
    return np.asarray((high - low) / (high + 10.0), dtype=np.float32)


def _colour(planes: tuple[F32, F32, F32]) -> F32:
    """Saturation and white-balanced chroma: painted car bodies against grey ground."""
    saturation = _saturation(*planes)
    balanced = [c * (1.0 / (c.mean(axis=1, keepdims=True) + 1.0)) for c in planes]
    chroma = _saturation(*balanced)
    return np.stack(
        [
            saturation.mean(axis=1),
            saturation.std(axis=1),
            _quantiles(saturation, (0.9,))[:, 0],
            chroma.std(axis=1),
            _quantiles(chroma, (0.9,))[:, 0],
        ],
        axis=1,
    ).astype(np.float32)


def _pooled_maps(planes: tuple[F32, F32, F32], grey: F32, magnitude: F32) -> F32:
    """Per-pixel maps (edge strength, brightness and colour deviation, saturation)
    averaged over the folded cells and thresholded, so that a car in the middle
    and a neighbour's bumper at the border give different vectors."""
    n = grey.shape[0]
    flat = grey.reshape(n, -1)
    median = _median(flat)[:, None]
    brightness = median + 0.05
    saturation = _saturation(*planes)
    centres = [c.mean(axis=1, keepdims=True) for c in planes]
    distance = sum((c - m) ** 2 for c, m in zip(planes, centres, strict=True))
    norm = np.sqrt(sum(m * m for m in centres)) + 10.0
    colour_dev = np.sqrt(distance) * (1.0 / norm)
    inverse = 1.0 / brightness
    maps = (
        magnitude.reshape(n, -1) * inverse,
        np.abs(flat - median) * inverse,
        saturation,
        colour_dev,
    )
    cells = np.eye(_CELLS, dtype=np.float32)[_CELL]
    cells /= cells.sum(axis=0, keepdims=True)
    pooled = [m @ cells for m in maps]
    fractions = [
        (m > k).mean(axis=1, keepdims=True) for m in (maps[0], maps[1], maps[3]) for k in (0.15, 0.3, 0.6)
    ]
    return np.log(np.concatenate(pooled + fractions, axis=1) + 0.01).astype(np.float32)


def patch_features(patches: NDArray[np.uint8]) -> F32:
    """The feature vectors of a batch of rectified patches (``N × D`` float32)."""
    if len(patches) == 0:
        return np.zeros((0, feature_count()), dtype=np.float32)
    planes = _planes(patches)
    grey = (0.114 * planes[0] + 0.587 * planes[1] + 0.299 * planes[2]).reshape(-1, PATCH_H, PATCH_W) * (
        1.0 / 255.0
    )
    ax, ay, magnitude = _gradients(grey)
    brightness = _median(grey.reshape(len(grey), -1)) + 0.05
    return np.concatenate(
        [
            _orientation_cells(ax, ay, magnitude),
            _lbp(grey, (0.04 * brightness).astype(np.float32)),
            _contrast(grey, magnitude),
            _edge_density(magnitude, grey),
            _colour(planes),
            _pooled_maps(planes, grey, magnitude),
        ],
        axis=1,
    )


def feature_count() -> int:
    """Length of one feature vector."""
    return _CELLS * _ORIENT_BINS + _LBP_BINS + 8 + 6 + 5 + 4 * _CELLS + 9
