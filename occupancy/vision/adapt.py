"""Adapting the detector to one camera without labels: a per-space calibration, self-taught.

How this works. On a camera it has never seen, the network still *ranks* a
space's frames well (a car scores higher than the empty bay), but its split
can sit in the wrong place: occupied bays of a new camera may score a logit
of -1 where UFPR05's score +6, and come out free. Over hours of a stream
each bay shows both states, and its logits form two clusters. For every
space the adaptation keeps a histogram of the model's logits (before any
offset) and splits it in two (Otsu's threshold); when one cluster is the
detector's confident answer (most often: empty, confidently free), the
bay's boundary is put just beyond what that state looks like on this
camera, and the per-space offset moves that boundary onto the middle of
the operating point's band.

Safeguards (an unlabelled stream can teach wrong things):

- **both states seen**: each cluster must hold at least ``min_share`` of the
  space's frames (a bay always occupied, or always empty, has one cluster
  and learns nothing), and the space needs ``min_frames`` frames;
- **one state confidently known**: either the low cluster lies below the
  band and a logit of ``-confident`` (the detector's own confident
  ``free``: what empty looks like here) and the high one does not, or the
  high cluster lies above the band and ``+confident`` and the low one is
  unsure; the clusters must be ``min_gap`` logits apart. Shadows moving
  over an empty bay make two clusters that are both confidently free, and
  teach nothing. The new boundary sits ``spread`` standard deviations
  beyond the known cluster (so the error it makes is an empty bay called
  occupied, not the reverse), put on the middle of the band;
- **a bounded, one-way shift**: the offset is at most ``max_raise``
  towards ``occupied`` and ``max_lower`` towards ``free``, 0 by default:
  adaptation can make the detector see more cars, never fewer (the
  dangerous error, an occupied bay reported free, is what a lesson towards
  free would make; on the proxy the one camera that learnt to lower lost
  recall);
- a camera-wide offset learnt the same way from all spaces' histograms
  together (its own minimum share, 5 %, and frames, 5: each frame holds
  every space) serves spaces that do not qualify yet.

The state is a few hundred integers per camera (:meth:`Adaptation.to_json`),
stored by the gateway in its state folder; it only grows by counting, so a
restart loses nothing and the same frames give the same offsets in any
order. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from occupancy.vision.detector import Detector, OperatingPoint, logit
from occupancy.vision.errors import VisionError
from occupancy.vision.layout import Layout

LOW, HIGH, BINS = -12.0, 12.0, 48  # logit histogram: 0.5-wide bins, ends clipped in
_CENTRES = LOW + (np.arange(BINS) + 0.5) * (HIGH - LOW) / BINS
STATE_VERSION = 1


class AdaptationError(VisionError):
    """A stored adaptation state is malformed or belongs to another camera."""


@dataclass(frozen=True, slots=True)
class AdaptSettings:
    """The safeguards (see the module docstring)."""

    min_frames: int = 12
    min_share: float = 0.1
    min_gap: float = 3.0
    max_raise: float = 4.0
    max_lower: float = 0.0  # measured: lowering cost recall on the proxy (docs/vision.md)
    camera_min_share: float = 0.05
    camera_min_frames: int = 5  # the pooled histogram holds every space of each frame
    confident: float = 2.0  # |logit| beyond which (and beyond the band) a cluster is confident
    spread: float = 3.0  # the boundary's distance from the known cluster, in its standard deviations
    min_std: float = 1.0  # a cluster's spread is taken as at least this (few frames underestimate it)


@dataclass(frozen=True, slots=True)
class Split:
    """Two clusters of one histogram: where they split, their means and shares."""

    at: float
    low_mean: float
    high_mean: float
    low_share: float
    high_share: float
    frames: int
    low_std: float = 0.0
    high_std: float = 0.0


def otsu(counts: NDArray[np.int64]) -> Split | None:
    """Otsu's split of a logit histogram (``None`` when it is empty or one bin)."""
    total = int(counts.sum())
    if total == 0 or np.count_nonzero(counts) < 2:
        return None
    w = counts / total
    low_w = np.cumsum(w)[:-1]
    low_sum = np.cumsum(w * _CENTRES)[:-1]
    mean = float((w * _CENTRES).sum())
    high_w = 1.0 - low_w
    valid = (low_w > 0) & (high_w > 0)
    between = np.where(valid, (mean * low_w - low_sum) ** 2 / np.where(valid, low_w * high_w, 1.0), -1.0)
    k = int(np.argmax(between))
    low_mean = float(low_sum[k] / low_w[k])
    high_mean = float((mean - low_sum[k]) / high_w[k])
    low_std = float(np.sqrt((w[: k + 1] * (_CENTRES[: k + 1] - low_mean) ** 2).sum() / low_w[k]))
    high_std = float(np.sqrt((w[k + 1 :] * (_CENTRES[k + 1 :] - high_mean) ** 2).sum() / high_w[k]))
    at = float(LOW + (k + 1) * (HIGH - LOW) / BINS)
    return Split(at, low_mean, high_mean, float(low_w[k]), float(high_w[k]), total, low_std, high_std)


def _logit(p: float) -> float:
    q = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(q / (1 - q))


def learnt_offset(split: Split | None, point: OperatingPoint, settings: AdaptSettings,
                  min_share: float) -> float | None:
    """The offset a split teaches, or ``None`` when a safeguard says it teaches nothing.

    With the empty state confidently known (the low cluster), the bay's new
    boundary is just above what empty looks like: ``spread`` standard
    deviations above the low cluster's mean (but no higher than halfway to
    the high cluster), put on the middle of the band. Symmetrically, with
    the occupied state confidently known and the empty one unsure, the
    boundary goes just below the high cluster.
    """
    if split is None or split.frames < settings.min_frames:
        return None
    if min(split.low_share, split.high_share) < min_share:
        return None
    if split.high_mean - split.low_mean < settings.min_gap:
        return None
    free_edge = min(_logit(point.free_below), -settings.confident)
    occupied_edge = max(_logit(point.occupied_from), settings.confident)
    low = _side(split.low_mean, free_edge, occupied_edge)
    high = _side(split.high_mean, free_edge, occupied_edge)
    middle = 0.5 * (split.low_mean + split.high_mean)
    if low == "free" and high != "free":
        boundary = min(split.low_mean + settings.spread * max(split.low_std, settings.min_std), middle)
    elif low == "unsure" and high == "occupied":
        boundary = max(split.high_mean - settings.spread * max(split.high_std, settings.min_std), middle)
    else:
        return None  # both on one side (shadows on an empty bay; two cars), or neither confident
    target = 0.5 * (_logit(point.free_below) + _logit(point.occupied_from))
    return float(np.clip(target - boundary, -settings.max_lower, settings.max_raise)) + 0.0  # no -0.0


def _side(logit: float, free_edge: float, occupied_edge: float) -> str:
    return "free" if logit < free_edge else "occupied" if logit >= occupied_edge else "unsure"


@dataclass
class Adaptation:
    """One camera's adaptation: a logit histogram per space, and the offsets they teach."""

    point: OperatingPoint
    settings: AdaptSettings = field(default_factory=AdaptSettings)
    histograms: dict[str, NDArray[np.int64]] = field(default_factory=dict)
    frames: int = 0

    def observe(self, space_ids: Sequence[str], logits: Iterable[float]) -> None:
        """Count one frame: the model's logit (no offset) of each space it answered."""
        for space_id, z in zip(space_ids, logits, strict=True):
            if not math.isfinite(z):
                continue
            counts = self.histograms.setdefault(space_id, np.zeros(BINS, dtype=np.int64))
            counts[int(np.clip((z - LOW) / (HIGH - LOW) * BINS, 0, BINS - 1))] += 1
        self.frames += 1

    def camera_offset(self) -> float | None:
        """The camera-wide offset (all spaces' histograms together), if one is taught."""
        if not self.histograms:
            return None
        pooled = np.sum(list(self.histograms.values()), axis=0)
        split = otsu(pooled)
        if split is not None:  # counted in frames of the camera, each holding every space
            split = replace(split, frames=self.frames)
        settings = replace(self.settings, min_frames=self.settings.camera_min_frames)
        return learnt_offset(split, self.point, settings, self.settings.camera_min_share)

    def space_offsets(self) -> dict[str, float]:
        """The offsets of the spaces that qualify on their own."""
        out = {}
        for space_id, counts in self.histograms.items():
            offset = learnt_offset(otsu(counts), self.point, self.settings, self.settings.min_share)
            if offset is not None:
                out[space_id] = offset
        return out

    def offsets(self, space_ids: Iterable[str]) -> dict[str, float]:
        """Space → logit offset: its own if learnt, else the camera's, else none."""
        own, camera = self.space_offsets(), self.camera_offset()
        out = {}
        for space_id in space_ids:
            value = own.get(space_id, camera)
            if value is not None:
                out[space_id] = value
        return out

    def progress(self, space_ids: Sequence[str]) -> float:
        """The share of ``space_ids`` with an offset of their own (0..1): the health figure."""
        own = self.space_offsets()
        return round(sum(1 for s in space_ids if s in own) / len(space_ids), 4) if space_ids else 0.0

    def to_json(self) -> str:
        """The state as JSON (histograms as integer lists)."""
        return json.dumps({
            "version": STATE_VERSION, "bins": [LOW, HIGH, BINS], "frames": self.frames,
            "operating_point": self.point.to_dict(),
            "spaces": {k: v.tolist() for k, v in sorted(self.histograms.items())},
        })

    @classmethod
    def from_json(cls, text: str, point: OperatingPoint,
                  settings: AdaptSettings | None = None) -> Adaptation:
        """Read a stored state (the operating point is today's, not the stored one)."""
        try:
            data = json.loads(text)
            _check(data)
            histograms = {str(k): np.asarray(v, dtype=np.int64) for k, v in data["spaces"].items()}
            frames = int(data["frames"])
        except (ValueError, TypeError, KeyError) as exc:
            raise AdaptationError(f"not an adaptation state: {exc}") from exc
        if any(h.shape != (BINS,) or (h < 0).any() for h in histograms.values()) or frames < 0:
            raise AdaptationError("adaptation state: histograms of the wrong size or negative counts")
        return cls(point, settings or AdaptSettings(), histograms, frames)


def _check(data: Any) -> None:
    if not isinstance(data, Mapping) or not isinstance(data.get("spaces"), Mapping):
        raise ValueError("want an object with 'spaces'")
    if data.get("version") != STATE_VERSION or data.get("bins") != [LOW, HIGH, BINS]:
        raise ValueError(f"version {data.get('version')!r} / bins {data.get('bins')!r} not this code's")


def observe_frame(adaptation: Adaptation, detector: Detector, frame: NDArray[np.uint8],
                  layout: Layout) -> NDArray[np.float64]:
    """Count one frame of a stream; returns the model's probabilities (no offsets) for reuse."""
    p = detector.model_probabilities(frame, layout)
    seen = detector.visible(layout, frame.shape[1], frame.shape[0])
    adaptation.observe([i for i, s in zip(layout.ids, seen, strict=True) if s], logit(p[seen]).tolist())
    return p
