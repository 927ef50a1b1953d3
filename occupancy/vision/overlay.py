"""Draw what the detector thinks on top of a frame (pure: returns a new image).

Free spaces are outlined green, occupied red, unknown grey; each polygon is
labelled with its id and occupancy probability.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from occupancy.vision.detector import SpaceResult
from occupancy.vision.layout import Layout

COLOURS: dict[str, tuple[int, int, int]] = {
    "free": (40, 200, 40),
    "occupied": (40, 40, 230),
    "unknown": (160, 160, 160),
}


def draw_overlay(
    frame: NDArray[np.uint8], layout: Layout, results: Sequence[SpaceResult]
) -> NDArray[np.uint8]:
    """A copy of ``frame`` with every space outlined and labelled by its result."""
    out = frame.copy()
    tint = frame.copy()
    by_id = {result.space_id: result for result in results}
    for space in layout.spaces:
        result = by_id.get(space.id)
        colour = COLOURS[result.state if result else "unknown"]
        points = np.round(np.asarray(space.polygon)).astype(np.int32)
        cv2.fillPoly(tint, [points], colour)
    out = np.asarray(cv2.addWeighted(tint, 0.25, out, 0.75, 0.0), dtype=np.uint8)
    for space in layout.spaces:
        _outline(out, space.id, np.asarray(space.polygon), by_id.get(space.id))
    return out


def _outline(
    image: NDArray[np.uint8], space_id: str, polygon: NDArray[np.float64], result: SpaceResult | None
) -> None:
    colour = COLOURS[result.state if result else "unknown"]
    points = np.round(polygon).astype(np.int32)
    cv2.polylines(image, [points], True, colour, 2, cv2.LINE_AA)
    text = space_id if result is None else f"{space_id} {result.probability:.2f}"
    x, y = (int(v) for v in polygon.mean(axis=0))
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    origin = (x - w // 2, y + h // 2)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
