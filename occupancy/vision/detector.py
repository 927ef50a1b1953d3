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
polygon has less than 60 % of its area inside the frame is ``unknown``.

The operating point (:class:`OperatingPoint`) turns a probability into a
state: ``free`` below ``free_below``, ``occupied`` from ``occupied_from``
on, ``unknown`` in between (the unsure band). A model file may carry its
calibrated default (``"operating_point": {"free_below": .., "occupied_from":
..}``); without one the split is at 0.5 with no band. Per-space logit
offsets (``offsets``, learnt by ``occupancy.vision.adapt`` on a camera's own
stream) shift a space's score before the operating point applies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
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


_PLAN_CACHE = 16  # layouts whose warps a detector keeps (an eval tree may hold thousands)


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Probability → state: ``free`` below ``free_below``, ``occupied`` from ``occupied_from``.

    Between the two the answer is ``unknown`` (the detector is unsure; an
    unknown is no vote, never a ``free``). Equal bounds are a plain
    threshold with no unknown band.
    """

    free_below: float = 0.5
    occupied_from: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.free_below <= self.occupied_from <= 1.0:
            raise ValueError(
                f"operating point wants 0 <= free_below ({self.free_below}) <= "
                f"occupied_from ({self.occupied_from}) <= 1"
            )

    @classmethod
    def threshold(cls, value: float) -> OperatingPoint:
        """A plain split at ``value``: occupied when ``p >= value``, never unknown."""
        return cls(value, value)

    def state(self, probability: float) -> State:
        """The state of one probability."""
        if probability >= self.occupied_from:
            return "occupied"
        return "free" if probability < self.free_below else "unknown"

    def to_dict(self) -> dict[str, float]:
        return {"free_below": self.free_below, "occupied_from": self.occupied_from}


def _read_description(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read model {path}: {exc}") from exc


def model_operating_point(path: Path | str = DEFAULT_DETECTOR) -> OperatingPoint:
    """The operating point a model file recommends (a plain 0.5 split when it names none)."""
    raw = _read_description(Path(path))
    point = raw.get("operating_point") if isinstance(raw, dict) else None
    if point is None:
        return OperatingPoint()
    try:
        return OperatingPoint(float(point["free_below"]), float(point["occupied_from"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: bad operating_point {point!r}: {exc}") from exc


def load_model(path: Path | str = DEFAULT_DETECTOR) -> Model:
    """Read a model description: ``kind`` ``cnn`` (ONNX beside it) or ``logistic``."""
    path = Path(path)
    data = _read_description(path)
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

    @property
    def confidence(self) -> float:
        """How sure the detector is of its answer: ``p`` for occupied, ``1 - p`` for free,
        the larger of the two for unknown (never above the band's edge)."""
        if self.state == "occupied":
            return self.probability
        if self.state == "free":
            return 1.0 - self.probability
        return max(self.probability, 1.0 - self.probability)


VISIBLE = 0.6  # share of a polygon's area inside the frame for the space to get an answer


def inside_fraction(layout: Layout, width: int, height: int) -> NDArray[np.float64]:
    """The share of each space's area inside a ``width × height`` frame.

    A far-row box drawn a few pixels past the frame's edge is still seen; a
    space half off the frame is not. (The area of the convex hull; a polygon
    of no area counts its corners instead.)
    """
    frame = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    fractions = []
    for space in layout.spaces:
        points = np.asarray(space.polygon, dtype=np.float32)
        hull = cv2.convexHull(points)
        area = float(cv2.contourArea(hull))
        if area <= 1.0:
            x, y = points[:, 0], points[:, 1]
            fractions.append(float(((x >= 0) & (x < width) & (y >= 0) & (y < height)).mean()))
            continue
        overlap, _ = cv2.intersectConvexConvex(hull, frame)
        fractions.append(min(1.0, float(overlap) / area))
    return np.asarray(fractions)


@dataclass
class Detector:
    """Scores every space of a layout in a frame.

    ``operating`` turns probabilities into states (:class:`OperatingPoint`);
    ``offsets`` are per-space logit shifts (space id → shift, from a
    camera's adaptation; absent spaces 0). Warps are computed once per
    layout and cached (the last few layouts), so a camera loop pays for them
    only on its first frame.
    """

    model: Model
    operating: OperatingPoint = field(default_factory=OperatingPoint)
    offsets: Mapping[str, float] = field(default_factory=dict)
    _plans: dict[Layout, tuple[Warp, ...]] = field(default_factory=dict, repr=False)
    _seen: dict[tuple[Layout, int, int], NDArray[np.bool_]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.model, LogisticModel) and self.model.features != FEATURES_VERSION:
            raise ModelError(
                f"model was trained on features {self.model.features!r}, "
                f"this code computes {FEATURES_VERSION!r}: retrain it"
            )

    @classmethod
    def load(cls, path: Path | str = DEFAULT_DETECTOR, operating: OperatingPoint | None = None) -> Detector:
        """A detector with the model read from ``path`` (the shipped model by default) and
        ``operating`` (by default the one the model file recommends)."""
        return cls(load_model(path), operating or model_operating_point(path))

    @property
    def threshold(self) -> float:
        """The probability from which a space is ``occupied``."""
        return self.operating.occupied_from

    @property
    def spec(self) -> PatchSpec:
        """The patch the model wants (size and context margin)."""
        return self.model.spec if isinstance(self.model, CnnModel) else FEATURE_PATCH

    def _warps(self, layout: Layout) -> tuple[Warp, ...]:
        if layout not in self._plans:
            if len(self._plans) >= _PLAN_CACHE:
                del self._plans[next(iter(self._plans))]
            self._plans[layout] = plan_warps(layout, self.spec)
        return self._plans[layout]

    def visible(self, layout: Layout, width: int, height: int) -> NDArray[np.bool_]:
        """Which spaces are enough inside a ``width × height`` frame to get an answer (cached)."""
        key = (layout, width, height)
        if key not in self._seen:
            if len(self._seen) >= _PLAN_CACHE:
                del self._seen[next(iter(self._seen))]
            self._seen[key] = inside_fraction(layout, width, height) >= VISIBLE
        return self._seen[key]

    def patches(self, frame: NDArray[np.uint8], layout: Layout) -> NDArray[np.uint8]:
        """The rectified patch of each space, as the model sees it (``N × h × w × 3``)."""
        return rectify(frame, self._warps(layout))

    def model_probabilities(self, frame: NDArray[np.uint8], layout: Layout) -> NDArray[np.float64]:
        """The model's own probability of each space, before per-space offsets."""
        patches = self.patches(frame, layout)
        if isinstance(self.model, CnnModel):
            return self.model.probability_of_patches(patches)
        return self.model.probability(patch_features(patches))

    def probabilities(self, frame: NDArray[np.uint8], layout: Layout) -> NDArray[np.float64]:
        """Occupancy probability of each space, in layout order (per-space offsets applied)."""
        return self.adjusted(layout, self.model_probabilities(frame, layout))

    def adjusted(self, layout: Layout, model: NDArray[np.float64]) -> NDArray[np.float64]:
        """The model's probabilities of ``layout``'s spaces with the per-space offsets applied."""
        if not self.offsets:
            return model
        shift = np.array([self.offsets.get(i, 0.0) for i in layout.ids], dtype=np.float64)
        return shift_probabilities(model, shift)

    def detect(self, frame: NDArray[np.uint8], layout: Layout) -> tuple[SpaceResult, ...]:
        """One :class:`SpaceResult` per space of ``layout``, in layout order."""
        return self.results(layout, self.probabilities(frame, layout), frame.shape[1], frame.shape[0])

    def results(self, layout: Layout, probabilities: NDArray[np.float64], width: int,
                height: int) -> tuple[SpaceResult, ...]:
        """The results of probabilities already computed for a ``width × height`` frame."""
        seen = self.visible(layout, width, height)
        return tuple(
            SpaceResult(space.id, float(p), self.operating.state(float(p)) if v else "unknown")
            for space, p, v in zip(layout.spaces, probabilities, seen, strict=True)
        )


def logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """The log-odds of probabilities (clipped away from 0 and 1)."""
    q = np.clip(p, 1e-9, 1 - 1e-9)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


def shift_probabilities(p: NDArray[np.float64], shift: NDArray[np.float64]) -> NDArray[np.float64]:
    """Probabilities moved by ``shift`` in logit space."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logit(p) + shift, -40, 40))), dtype=np.float64)
