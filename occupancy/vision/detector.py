"""The per-space occupancy detector: frame + layout in, one result per space out.

Pipeline: rectify each space polygon to a fixed-size patch
(:mod:`occupancy.vision.rectify`), then score all patches of the frame with
one of two models:

- the shipped default, a small CNN run through ``cv2.dnn``
  (:mod:`occupancy.vision.cnn`, ``model/detector_cnn.json`` + ``.onnx``),
  on patches with a context margin;
- the texture model: camera-independent features
  (:mod:`occupancy.vision.features`) and logistic regression
  (:mod:`occupancy.vision.model`, ``model/detector.json``).

A model file is a JSON document whose ``kind`` says which. A space whose
polygon lies mostly outside the frame is reported ``unknown``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from occupancy.vision.cnn import CnnModel
from occupancy.vision.errors import ModelError
from occupancy.vision.features import FEATURES_VERSION, patch_features
from occupancy.vision.layout import Layout
from occupancy.vision.model import LogisticModel
from occupancy.vision.rectify import FEATURE_PATCH, PatchSpec, Warp, plan_warps, rectify

State = Literal["free", "occupied", "unknown"]
Model = LogisticModel | CnnModel
DEFAULT_DETECTOR = Path(__file__).with_name("model") / "detector_cnn.json"


def load_model(path: Path | str = DEFAULT_DETECTOR) -> Model:
    """Read a model description: ``kind`` ``cnn`` (ONNX beside it) or ``logistic``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read model {path}: {exc}") from exc
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "cnn":
        return CnnModel.from_description(data, path.parent)
    if kind == "logistic":
        return LogisticModel.from_json(json.dumps(data))
    raise ModelError(f"{path}: unknown model kind {kind!r}")


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

    model: Model
    threshold: float = 0.5
    _plans: dict[Layout, tuple[Warp, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.model, LogisticModel) and self.model.features != FEATURES_VERSION:
            raise ModelError(
                f"model was trained on features {self.model.features!r}, "
                f"this code computes {FEATURES_VERSION!r}: retrain it"
            )

    @classmethod
    def load(cls, path: Path | str = DEFAULT_DETECTOR, threshold: float = 0.5) -> Detector:
        """A detector with the model read from ``path`` (the shipped model by default)."""
        return cls(load_model(path), threshold)

    @property
    def spec(self) -> PatchSpec:
        """The patch the model wants (size and context margin)."""
        return self.model.spec if isinstance(self.model, CnnModel) else FEATURE_PATCH

    def _warps(self, layout: Layout) -> tuple[Warp, ...]:
        if layout not in self._plans:
            self._plans[layout] = plan_warps(layout, self.spec)
        return self._plans[layout]

    def patches(self, frame: NDArray[np.uint8], layout: Layout) -> NDArray[np.uint8]:
        """The rectified patch of each space, as the model sees it (``N × h × w × 3``)."""
        return rectify(frame, self._warps(layout))

    def probabilities(self, frame: NDArray[np.uint8], layout: Layout) -> NDArray[np.float64]:
        """Occupancy probability of each space, in layout order."""
        patches = self.patches(frame, layout)
        if isinstance(self.model, CnnModel):
            return self.model.probability_of_patches(patches)
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
