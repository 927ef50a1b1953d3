"""Synthetic camera frames of a simulated lot or market hall, drawn from the simulation state.

Pure: ``grid_layout`` places a zone's spaces as rows of quads seen from a
raised camera (rows further away are smaller and narrower); ``render`` draws
a 1280×720 BGR frame for given occupied spaces at a local time of day:
asphalt or tiled floor with texture, painted lines, cars (body, windows,
roof highlight) or stall awnings (striped canvas, crates) in the occupied
polygons, shadows cast away from a sun that moves with the hour, daylight
falling to a dim night with sensor noise. Randomness comes from the caller's
``numpy`` generator, so the same seed draws the same frames.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from occupancy.vision.layout import Layout, Space

Frame = NDArray[np.uint8]
W, H = 1280, 720
CAR_COLOURS = [(235, 235, 235), (30, 30, 30), (160, 160, 165), (40, 40, 150), (140, 80, 30),
               (60, 110, 40), (200, 200, 190), (20, 60, 120), (90, 90, 100)]
AWNING_COLOURS = [(40, 40, 200), (30, 140, 30), (200, 120, 20), (20, 160, 220), (150, 40, 150)]


def grid_layout(space_ids: list[str], *, per_row: int = 20, device: str | None = None,
                site: str | None = None) -> Layout:
    """Rows of bays in perspective; the first row nearest the camera (bottom of the frame)."""
    rows = max(1, math.ceil(len(space_ids) / per_row))
    spaces = []
    y_bottom = H - 30.0
    for r in range(rows):
        scale = 1.0 - 0.22 * r
        depth = 150.0 * scale
        width = min(58.0, (W - 80) / per_row) * scale
        x0 = (W - width * per_row) / 2
        for c in range(per_row):
            i = r * per_row + c
            if i >= len(space_ids):
                break
            xa, xb = x0 + c * width, x0 + (c + 1) * width
            shrink = 0.12 * width  # far edge narrower: perspective
            lean = shrink * (c - per_row / 2) / per_row
            poly = ((xa, y_bottom), (xb, y_bottom), (xb - lean, y_bottom - depth),
                    (xa - lean, y_bottom - depth))
            spaces.append(Space(space_ids[i], tuple((round(x, 1), round(y, 1)) for x, y in poly)))
        y_bottom -= depth + 40 * scale
    return Layout(tuple(spaces), device, site)


def daylight(hour: float) -> float:
    """Brightness factor: 1 at noon, about 0.25 at night (street lamps)."""
    sun = math.sin(math.pi * (hour - 6.0) / 12.0) if 6.0 <= hour <= 18.0 else 0.0
    return 0.25 + 0.75 * float(max(0.0, sun) ** 0.6)


def sun_offset(hour: float, length: float) -> tuple[float, float]:
    """Where a shadow falls: west in the morning, east in the evening, long when the sun is low."""
    if not 6.0 <= hour <= 18.0:
        return 0.0, 0.0
    angle = math.pi * (hour - 6.0) / 12.0  # 0 sunrise … π sunset
    elevation = max(0.15, math.sin(angle))
    return -math.cos(angle) * length / elevation * 0.5, 0.25 * length


def _background(rng: np.random.Generator, market: bool) -> NDArray[np.float32]:
    base = np.array((150, 145, 140) if market else (105, 104, 100), dtype=np.float32)
    coarse = rng.normal(0, 9, (H // 4, W // 4, 1)).astype(np.float32)
    noise = np.asarray(cv2.resize(coarse, (W, H), interpolation=cv2.INTER_LINEAR), np.float32)[..., None]
    fine = rng.normal(0, 5, (H, W, 1)).astype(np.float32)
    return np.asarray(np.clip(base + noise + fine, 0, 255), dtype=np.float32)


def _quad(space: Space) -> NDArray[np.int32]:
    return np.asarray(space.polygon, dtype=np.float32).round().astype(np.int32)


def _inner(space: Space, margin: float) -> NDArray[np.float32]:
    pts = np.asarray(space.polygon, dtype=np.float32)
    centre = pts.mean(axis=0)
    return np.asarray(centre + (pts - centre) * (1 - margin), dtype=np.float32)


def _draw_car(img: NDArray[np.float32], space: Space, rng: np.random.Generator) -> None:
    body = _inner(space, rng.uniform(0.06, 0.12)) + rng.normal(0, 2.0, (1, 2)).astype(np.float32)
    colour = CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))]
    cv2.fillPoly(img, [body.round().astype(np.int32)], colour)
    centre = body.mean(axis=0)
    for scale, shade in ((0.62, 0.35), (0.38, 1.25)):  # windows ring, roof
        part = centre + (body - centre) * np.array([0.8, scale], dtype=np.float32)
        tone = tuple(float(min(255, c * shade + (20 if shade > 1 else 0))) for c in colour)
        cv2.fillPoly(img, [part.round().astype(np.int32)], tone)
    cv2.polylines(img, [body.round().astype(np.int32)], True, (25, 25, 25), 1)


def _draw_awning(img: NDArray[np.float32], space: Space, rng: np.random.Generator) -> None:
    canvas = _inner(space, 0.06).round().astype(np.int32)
    colour = AWNING_COLOURS[int(rng.integers(len(AWNING_COLOURS)))]
    cv2.fillPoly(img, [canvas], colour)
    x0, y0, w, h = cv2.boundingRect(canvas)
    for k in range(0, w, 8):  # white stripes
        cv2.line(img, (x0 + k, y0), (x0 + k, y0 + h), (235, 235, 235), 3)
    for _ in range(int(rng.integers(2, 5))):  # crates of produce at the front
        cx = int(x0 + rng.uniform(0.1, 0.8) * w)
        cv2.rectangle(img, (cx, y0 + h - 14), (cx + 10, y0 + h - 4), (40, 110, 180), -1)


def _shadow(img: NDArray[np.float32], space: Space, hour: float) -> None:
    pts = _inner(space, 0.18)
    span = float(np.ptp(pts[:, 1]))
    dx, dy = sun_offset(hour, span * 0.35)
    if dx == dy == 0.0:
        return
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [(pts + np.array([dx, dy], dtype=np.float32)).round().astype(np.int32)], 1)
    img[mask == 1] *= np.array([0.55, 0.5, 0.45], dtype=np.float32)


def render(layout: Layout, occupied: set[str], hour: float, rng: np.random.Generator, *,
           market: bool = False) -> Frame:
    """One frame: ``occupied`` spaces filled, lit for ``hour`` (local, 0–24)."""
    img = _background(rng, market)
    for space in layout.spaces:
        cv2.polylines(img, [_quad(space)], True, (225, 225, 220), 2)
    for space in layout.spaces:
        if space.id in occupied:
            _shadow(img, space, hour)
    for space in layout.spaces:
        if space.id in occupied:
            (_draw_awning if market else _draw_car)(img, space, rng)
    light = daylight(hour)
    warm = np.array([1.0, 1.0, 1.0] if light > 0.5 else [0.85, 0.95, 1.1], dtype=np.float32)
    img = img * light * warm + rng.normal(0, 3 + 6 * (1 - light), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)
