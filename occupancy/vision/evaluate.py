"""Scoring the detector against ground truth: a confusion matrix, pure.

:func:`confusion` counts one frame's results against its labels and
:class:`Confusion` adds them up. Reading frames and PKLot XML from disk and
walking a folder of labelled frames is ``occupancy.vision.loading``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from occupancy.vision.detector import SpaceResult


@dataclass(frozen=True, slots=True)
class Confusion:
    """Counts of one evaluation; "positive" means occupied."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    frames: int = 0
    seconds: float = 0.0

    @property
    def spaces(self) -> int:
        """Number of labelled spaces scored."""
        return self.tp + self.fp + self.tn + self.fn

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp,
            self.fp + other.fp,
            self.tn + other.tn,
            self.fn + other.fn,
            self.frames + other.frames,
            self.seconds + other.seconds,
        )

    def summary(self) -> dict[str, Any]:
        """Accuracy, precision, recall, F1, counts and ms per frame as a JSON-able dict."""
        precision = _ratio(self.tp, self.tp + self.fp)
        recall = _ratio(self.tp, self.tp + self.fn)
        f1 = _ratio(2 * precision * recall, precision + recall)
        return {
            "accuracy": _ratio(self.tp + self.tn, self.spaces),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "spaces": self.spaces,
            "frames": self.frames,
            "ms_per_frame": _ratio(1000.0 * self.seconds, self.frames),
        }


def _ratio(a: float, b: float) -> float:
    return float(a) / b if b else 0.0


def confusion(results: Iterable[SpaceResult], labels: Mapping[str, bool], seconds: float = 0.0) -> Confusion:
    """Score one frame's results against its labels (unlabelled or unknown spaces skipped)."""
    tp = fp = tn = fn = 0
    for result in results:
        truth = labels.get(result.space_id)
        if truth is None or result.state == "unknown":
            continue
        predicted = result.state == "occupied"
        tp += predicted and truth
        fp += predicted and not truth
        tn += not predicted and not truth
        fn += not predicted and truth
    return Confusion(tp, fp, tn, fn, 1, seconds)
