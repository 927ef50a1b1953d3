"""Frame augmentations that imitate other cameras (training-only: ``train_detector.py``,
``train_cnn.py``; not part of the package, the detector never needs them).

Each transform takes a BGR frame and a layout and returns both changed the
same way, so labels stay valid: photometric changes (gain, gamma, colour
cast, blur, noise, JPEG), a change of resolution (the spaces get smaller, as
on a camera farther away), a tilt of the image plane (a homography) and a
jitter of the polygon corners (a layout drawn by another hand).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from occupancy.vision.layout import Layout, Space

Image = NDArray[np.uint8]
Transform = Callable[[Image, Layout, np.random.Generator], tuple[Image, Layout]]


Points = NDArray[np.float64]


def _each_polygon(layout: Layout, move: Callable[[Points], Points]) -> Layout:
    """``layout`` with every polygon (an ``N × 2`` array) replaced by ``move(polygon)``, in order."""
    spaces = []
    for space in layout.spaces:
        points = move(np.asarray(space.polygon, dtype=np.float64))
        spaces.append(Space(space.id, tuple((float(x), float(y)) for x, y in points)))
    return Layout(tuple(spaces), layout.device_id, layout.site_id)


def _size(points: Points) -> Points:
    return points.max(axis=0) - points.min(axis=0)


def _map_layout(layout: Layout, matrix: NDArray[np.float64]) -> Layout:
    return _each_polygon(
        layout, lambda p: cv2.perspectiveTransform(p.reshape(-1, 1, 2), matrix).reshape(-1, 2))


def rescale(
    frame: Image, layout: Layout, factor: float, factor_y: float | None = None
) -> tuple[Image, Layout]:
    """Resize the frame by ``factor`` (area interpolation) and the polygons with it; with
    ``factor_y`` the height by that instead (anisotropic: see :func:`squash`)."""
    height, width = frame.shape[:2]
    fy = factor if factor_y is None else factor_y
    size = (max(1, round(width * factor)), max(1, round(height * fy)))
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
    return _each_polygon(layout, lambda p: p + rng.uniform(-amount, amount, p.shape) * _size(p))


def shift(layout: Layout, amount: float, rng: np.random.Generator) -> Layout:
    """Move each polygon as a whole by up to ``amount`` of its size (a misplaced layout)."""
    return _each_polygon(layout, lambda p: p + rng.uniform(-amount, amount, 2) * _size(p))


def resize_polygons(layout: Layout, factor: float) -> Layout:
    """Each polygon scaled by ``factor`` about its centre: a layout drawn tighter (< 1) or looser
    (> 1) than the cars, as another hand or another lot's bay size gives; a tight polygon shows
    only a car's smooth middle (roof, bonnet), which looks like empty asphalt."""
    return _each_polygon(layout, lambda p: p.mean(axis=0) + factor * (p - p.mean(axis=0)))


def parallax(layout: Layout, fraction: float) -> Layout:
    """Each polygon moved down the image by ``fraction`` of its height: a camera lower than the
    cars are tall, where the bay drawn on the ground holds a car's lower half and the car rises
    into the bay behind it."""
    return _each_polygon(layout, lambda p: p + np.array([0.0, fraction * _size(p)[1]]))


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


# ---- stronger "other camera" transforms (issue 17) -----------------------------------


def rotate(frame: Image, layout: Layout, degrees: float) -> tuple[Image, Layout]:
    """Turn the frame by ``degrees`` about its centre, the canvas grown so nothing is cut off
    (a camera mounted at another roll: the spaces come out at another angle)."""
    height, width = frame.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (round(width * cos + height * sin), round(width * sin + height * cos))
    matrix[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
    out = cv2.warpAffine(frame, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    full = np.vstack([matrix, [0.0, 0.0, 1.0]]).astype(np.float64)
    return np.asarray(out, dtype=np.uint8), _map_layout(layout, full)


def squash(frame: Image, layout: Layout, factor: float, axis: int) -> tuple[Image, Layout]:
    """Shrink one image axis by ``factor`` (0 = x, 1 = y), the other unchanged: the ground seen
    from another elevation or side. Bays foreshortened this way can come out with their
    *short* side longest in the image (a car seen end-on), so the canonical patch shows the
    car across the patch rather than along it, as on lots filmed from a row's end."""
    return rescale(frame, layout, factor, 1.0) if axis == 0 else rescale(frame, layout, 1.0, factor)


def axis_aligned(layout: Layout) -> Layout:
    """Each polygon replaced by its axis-aligned bounding box (how some lots are annotated:
    a slanted bay's box takes in a part of its neighbours)."""

    def box(points: Points) -> Points:
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])

    return _each_polygon(layout, box)


def night(frame: Image, rng: np.random.Generator) -> Image:
    """Dark, noisy, bluish or sodium-orange, low saturation: a frame at dusk or under lamps."""
    orange = rng.random() < 0.5
    cast = (0.75, 0.95, 1.25) if orange else (1.2, 1.0, 0.85)  # BGR
    change = Photometric(
        gain=float(rng.uniform(0.15, 0.45)),
        gamma=float(rng.uniform(1.2, 2.0)),
        cast=cast,
        saturation=float(rng.uniform(0.2, 0.7)),
        noise=float(rng.uniform(2.0, 7.0)),
        jpeg=int(rng.integers(30, 80)),
    )
    return change.apply(frame, rng)


def glare(frame: Image, rng: np.random.Generator) -> Image:
    """Bright soft blobs (sun on a wet lot, headlights, lens flare) added to the frame."""
    height, width = frame.shape[:2]
    light = np.zeros((height, width), dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        axes = (int(rng.uniform(0.03, 0.25) * width), int(rng.uniform(0.02, 0.15) * height))
        cv2.ellipse(light, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.4, 1.0)), -1)
    light = cv2.GaussianBlur(light, (0, 0), float(rng.uniform(5, 25)))
    out = frame.astype(np.float32) + light[:, :, None] * 255.0
    return np.clip(out, 0, 255).astype(np.uint8)


def rain(frame: Image, rng: np.random.Generator) -> Image:
    """Streaks, washed-out contrast and blur, as through rain on a dome."""
    height, width = frame.shape[:2]
    streaks = np.zeros((height, width), dtype=np.float32)
    count = int(rng.integers(200, 1200))
    xs, ys = rng.uniform(0, width, count), rng.uniform(0, height, count)
    length, angle = float(rng.uniform(8, 25)), float(rng.uniform(-0.4, 0.4))
    for x, y in zip(xs, ys, strict=True):
        end = (int(x + length * np.sin(angle)), int(y + length * np.cos(angle)))
        cv2.line(streaks, (int(x), int(y)), end, 1.0, 1)
    x = frame.astype(np.float32)
    x = x.mean() + (x - x.mean()) * float(rng.uniform(0.5, 0.85))  # washed out
    x = x + streaks[:, :, None] * float(rng.uniform(30, 80))
    x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.6, 1.6)))
    return np.clip(x, 0, 255).astype(np.uint8)


def flat_patches(sources: Image, count: int, rng: np.random.Generator) -> Image:
    """``count`` rectified patches without a car's texture, to be taught as free: half one colour
    with a little sensor noise, half an empty bay of ``sources`` (``N × H × W × 3``) clipped to
    white or crushed to black (a white-out, an off-frame border, a dead camera region)."""
    n, height, width, _ = sources.shape
    out = np.empty((count, height, width, 3), dtype=np.uint8)
    for i in range(count):
        if i % 2 == 0 or n == 0:
            colour = rng.uniform(0, 255, 3)
            noise = rng.normal(0.0, rng.uniform(0.0, 3.0), (height, width, 3))
            out[i] = np.clip(colour + noise, 0, 255).astype(np.uint8)
        else:
            patch = sources[int(rng.integers(n))].astype(np.float32)
            gain = rng.uniform(4.0, 10.0) if rng.random() < 0.5 else rng.uniform(0.01, 0.05)
            out[i] = np.clip(patch * gain, 0, 255).astype(np.uint8)
    return out


# ---- fixed unseen-camera proxies (validation only, never in training) ----------------


NIGHT = Photometric(gain=0.25, gamma=1.7, cast=(0.75, 0.95, 1.25), saturation=0.5, noise=5.0, jpeg=50)


def _unseen(*steps: str) -> Transform:
    """A fixed "other camera" made of named steps, applied in order."""

    def transform(image: Image, layout: Layout, rng: np.random.Generator) -> tuple[Image, Layout]:
        for step_name in steps:
            kind, _, value = step_name.partition(":")
            if kind == "rotate":
                image, layout = rotate(image, layout, float(value))
            elif kind == "scale":
                image, layout = rescale(image, layout, float(value))
            elif kind in ("squash_x", "squash_y"):
                image, layout = squash(image, layout, float(value), 0 if kind == "squash_x" else 1)
            elif kind == "tilt":
                image, layout = tilt(image, layout, float(value), rng)
            elif kind == "boxes":
                layout = axis_aligned(layout)
            elif kind == "outline":
                layout = resize_polygons(layout, float(value))
            elif kind == "parallax":
                layout = parallax(layout, float(value))
            elif kind == "night":
                image = NIGHT.apply(image, rng)
            elif kind == "dusk":
                image = Photometric(gain=0.35, gamma=1.6).apply(image, rng)
            elif kind == "blurjpeg":
                image = Photometric(blur=1.0, jpeg=30).apply(image, rng)
            elif kind == "glare":
                image = glare(image, rng)
            elif kind == "rain":
                image = rain(image, rng)
            elif kind == "shadows":
                image = cast_shadows(image, rng)
            elif kind == "cast":
                image = Photometric(cast=(1.25, 1.0, 0.8), saturation=0.5).apply(image, rng)
        return image, layout

    return transform


# The proxies for an unseen camera: held-out sequences (other days) seen through
# fixed camera changes of the kinds other PKLot lots show (PUCPR: high, many
# small far-row spaces; UFPR04: another angle; boxes instead of quads).
UNSEEN: dict[str, Transform] = {
    "as is": _unseen(),
    "rolled 20° + 1/2 size": _unseen("rotate:20", "scale:0.5"),
    "tilted 15 % + 1/3 size": _unseen("tilt:0.15", "scale:0.33"),
    "axis-aligned boxes": _unseen("boxes"),
    "night (orange lamps, noise, JPEG)": _unseen("night"),
    "1/5 size, blur, JPEG 30": _unseen("scale:0.2", "blurjpeg"),
    "glare + rain": _unseen("glare", "rain"),
    "shadows + colour cast": _unseen("shadows", "cast"),
    "rolled -30° + boxes + dusk + 1/2 size": _unseen("rotate:-30", "boxes", "dusk", "scale:0.5"),
    # bays seen end-on / from lower down: most of UFPR05's bays then have their short side
    # longest in the image, so the car lies across the canonical patch
    "end-on (width 45 %) + 1/2 size": _unseen("squash_x:0.45", "scale:0.5"),
    "lower camera (depth 40 %) + 1/2 size": _unseen("squash_y:0.4", "scale:0.5"),
    # layouts drawn tighter than the cars, and a camera low enough that cars rise off their bay
    "tight polygons (60 %)": _unseen("outline:0.6"),
    "parallax (polygons 35 % lower) + 1/2 size": _unseen("parallax:0.35", "scale:0.5"),
}
