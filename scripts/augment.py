"""Frame augmentations that imitate other cameras (training-only: ``train_detector.py``,
``train_cnn.py``; not part of the package, the detector never needs them).

Each transform takes a BGR frame and a layout and returns both changed the
same way, so labels stay valid: photometric changes (gain, gamma, colour
cast, blur, noise, JPEG), a change of resolution (the spaces get smaller, as
on a camera farther away), a tilt of the image plane (a homography) and a
jitter of the polygon corners (a layout drawn by another hand).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from occupancy.vision.layout import Layout, Space

Image = NDArray[np.uint8]


def _map_layout(layout: Layout, matrix: NDArray[np.float64]) -> Layout:
    spaces = []
    for space in layout.spaces:
        points = np.asarray(space.polygon, dtype=np.float64).reshape(-1, 1, 2)
        mapped = cv2.perspectiveTransform(points, matrix).reshape(-1, 2)
        spaces.append(Space(space.id, tuple((float(x), float(y)) for x, y in mapped)))
    return Layout(tuple(spaces), layout.device_id, layout.site_id)


def rescale(frame: Image, layout: Layout, factor: float) -> tuple[Image, Layout]:
    """Resize the frame by ``factor`` (area interpolation) and the polygons with it."""
    height, width = frame.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    out = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    matrix = np.diag([size[0] / width, size[1] / height, 1.0])
    return np.asarray(out, dtype=np.uint8), _map_layout(layout, matrix)


def tilt(frame: Image, layout: Layout, amount: float, rng: np.random.Generator) -> tuple[Image, Layout]:
    """Warp the whole frame by a random homography moving corners by ``amount`` of its size."""
    height, width = frame.shape[:2]
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    shift = rng.uniform(-amount, amount, (4, 2)) * (width, height)
    moved = (corners + shift).astype(np.float32)
    matrix = np.asarray(cv2.getPerspectiveTransform(corners, moved), dtype=np.float64)
    out = cv2.warpPerspective(frame, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    return np.asarray(out, dtype=np.uint8), _map_layout(layout, matrix)


def jitter(layout: Layout, amount: float, rng: np.random.Generator) -> Layout:
    """Move each polygon corner by up to ``amount`` of the polygon's size."""
    spaces = []
    for space in layout.spaces:
        points = np.asarray(space.polygon, dtype=np.float64)
        size = points.max(axis=0) - points.min(axis=0)
        points = points + rng.uniform(-amount, amount, points.shape) * size
        spaces.append(Space(space.id, tuple((float(x), float(y)) for x, y in points)))
    return Layout(tuple(spaces), layout.device_id, layout.site_id)


def shift(layout: Layout, amount: float, rng: np.random.Generator) -> Layout:
    """Move each polygon as a whole by up to ``amount`` of its size (a misplaced layout)."""
    spaces = []
    for space in layout.spaces:
        points = np.asarray(space.polygon, dtype=np.float64)
        size = points.max(axis=0) - points.min(axis=0)
        points = points + rng.uniform(-amount, amount, 2) * size
        spaces.append(Space(space.id, tuple((float(x), float(y)) for x, y in points)))
    return Layout(tuple(spaces), layout.device_id, layout.site_id)


@dataclass(frozen=True, slots=True)
class Photometric:
    """One photometric change: ``out = 255 · (gain · cast · (in/255)) ** gamma``, then blur, noise, JPEG."""

    gain: float = 1.0
    gamma: float = 1.0
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    saturation: float = 1.0
    blur: float = 0.0
    noise: float = 0.0
    jpeg: int = 0

    def apply(self, frame: Image, rng: np.random.Generator) -> Image:
        """The changed frame (``rng`` draws the noise)."""
        x = frame.astype(np.float32) / 255.0
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * self.saturation
        x = np.clip(x * self.gain * np.asarray(self.cast, dtype=np.float32), 0, 1) ** self.gamma
        x = x * 255.0
        if self.blur > 0:
            x = np.asarray(cv2.GaussianBlur(x, (0, 0), self.blur), dtype=np.float32)
        if self.noise > 0:
            x = x + rng.normal(0, self.noise, x.shape).astype(np.float32)
        out: Image = np.clip(x, 0, 255).astype(np.uint8)
        if self.jpeg:
            ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg])
            out = np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), dtype=np.uint8) if ok else out
        return out


def _shadow_mask(shape: tuple[int, int], rng: np.random.Generator) -> NDArray[np.float32]:
    """1 where a random shadow falls: straight-edged bands (poles, buildings) or tree blobs."""
    height, width = shape
    mask = np.zeros((height, width), dtype=np.float32)
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 4))):
            centre = rng.uniform(0, 1, 2) * (width, height)
            angle = rng.uniform(0, np.pi)
            direction = np.array([np.cos(angle), np.sin(angle)])
            normal = np.array([-direction[1], direction[0]])
            half = rng.uniform(0.01, 0.3) * width
            corners = [
                centre + direction * 2 * width * s + normal * half * t
                for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))
            ]
            cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1.0)
    else:
        cells = rng.random((int(rng.integers(6, 40)), int(rng.integers(10, 70)))).astype(np.float32)
        smooth = cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC)
        mask = (smooth > rng.uniform(0.4, 0.7)).astype(np.float32)
    sigma = float(rng.uniform(0.5, 3.0))
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), dtype=np.float32)


def cast_shadows(frame: Image, rng: np.random.Generator) -> Image:
    """Darken random regions as sun shadows do (darker, a little bluer), spaces unchanged."""
    mask = _shadow_mask(frame.shape[:2], rng)[:, :, None]
    depth = float(rng.uniform(0.3, 0.75))
    tint = np.array([1.1, 1.0, 0.9], dtype=np.float32) * depth
    factor = 1.0 - mask * (1.0 - tint)
    return np.clip(frame.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def random_photometric(rng: np.random.Generator) -> Photometric:
    """A random photometric change within the range of real cameras and times of day."""
    return Photometric(
        gain=float(rng.uniform(0.5, 1.4)),
        gamma=float(np.exp(rng.uniform(-0.6, 0.6))),
        cast=tuple(float(c) for c in rng.uniform(0.8, 1.2, 3)),  # type: ignore[arg-type]
        saturation=float(rng.uniform(0.3, 1.5)),
        blur=float(rng.choice([0.0, 0.0, rng.uniform(0.5, 1.8)])),
        noise=float(rng.choice([0.0, rng.uniform(1.0, 6.0)])),
        jpeg=int(rng.choice([0, 0, int(rng.integers(25, 90))])),
    )
