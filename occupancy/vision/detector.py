"""The per-space occupancy detector: frame + layout in, one result per space out.

Pipeline: rectify each space polygon to a fixed-size patch
(:mod:`occupancy.vision.rectify`), describe it with camera-independent
features (:mod:`occupancy.vision.features`), and score it with a small
logistic model (:mod:`occupancy.vision.model`). A space whose polygon lies
mostly outside the frame is reported ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from occupancy.vision.errors import ModelError
from occupancy.vision.features import FEATURES_VERSION, patch_features
from occupancy.vision.layout import Layout
from occupancy.vision.model import DEFAULT_MODEL, LogisticModel
from occupancy.vision.rectify import Warp, plan_warps, rectify

State = Literal["free", "occupied", "unknown"]


@dataclass(frozen=True, slots=True)
class SpaceResult:
    """What the detector thinks of one space in one frame."""

    space_id: str
    probability: float
    state: State


def _inside_fraction(layout: Layout, width: int, height: int) -> NDArray[np.float64]:
    fractions = []
    for space in layout.spaces:
        points = np.asarray(space.polygon, dtype=np.float64)
        inside = (points[:, 0] >= 0) & (points[:, 0] < width)
        inside &= (points[:, 1] >= 0) & (points[:, 1] < height)
        fractions.append(inside.mean())
    return np.asarray(fractions)


@dataclass
class Detector:
    """Scores every space of a layout in a frame.

    ``threshold`` splits free from occupied. Warps are computed once per
    layout and cached, so a camera loop pays for them only on its first frame.
    """

    model: LogisticModel
    threshold: float = 0.5
    _plans: dict[Layout, tuple[Warp, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.model.features != FEATURES_VERSION:
            raise ModelError(
                f"model was trained on features {self.model.features!r}, "
                f"this code computes {FEATURES_VERSION!r}: retrain it"
            )

    @classmethod
    def load(cls, path: Path | str = DEFAULT_MODEL, threshold: float = 0.5) -> Detector:
        """A detector with the model read from ``path`` (the shipped model by default)."""
        return cls(LogisticModel.load(path), threshold)

    def _warps(self, layout: Layout) -> tuple[Warp, ...]:
        if layout not in self._plans:
            self._plans[layout] = plan_warps(layout)
        return self._plans[layout]

    def probabilities(self, frame: NDArray[np.uint8], layout: Layout) -> NDArray[np.float64]:
        """Occupancy probability of each space, in layout order."""
        patches = rectify(frame, self._warps(layout))
        return self.model.probability(patch_features(patches))

    def detect(self, frame: NDArray[np.uint8], layout: Layout) -> tuple[SpaceResult, ...]:
        """One :class:`SpaceResult` per space of ``layout``, in layout order."""
        probabilities = self.probabilities(frame, layout)
        inside = _inside_fraction(layout, frame.shape[1], frame.shape[0])
        return tuple(
            SpaceResult(space.id, float(p), self._state(float(p), float(f)))
            for space, p, f in zip(layout.spaces, probabilities, inside, strict=True)
        )

    def _state(self, probability: float, inside: float) -> State:
        if inside < 0.75:
            return "unknown"
        return "occupied" if probability >= self.threshold else "free"
