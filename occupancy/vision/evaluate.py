"""Scoring the detector against ground truth: a confusion matrix, pure.

:func:`confusion` counts one frame's results against its labels and
:class:`Confusion` adds them up. Reading frames and PKLot XML from disk and
walking a folder of labelled frames is ``occupancy.vision.loading``.

How an ``unknown`` answer counts (the detector's unsure band, or a polygon
off the frame): it is neither right nor wrong about the class, so it is kept
apart. ``accuracy`` is over **every labelled space, an unknown counted as
wrong** (abstaining cannot raise it); ``accuracy_answered`` is over the
spaces that got ``free`` or ``occupied``. Precision and recall of each class
are over answered spaces (an unknown is not "free": it sends no driver to a
taken bay), and ``unknown_share`` says how many answers were withheld;
``recall_occupied_all`` counts an unknown on an occupied bay as missed.
Spaces without a label (no ``occupied`` attribute) are not scored at all and
are counted in ``unlabelled``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from occupancy.vision.detector import SpaceResult


@dataclass(frozen=True, slots=True)
class Confusion:
    """Counts of one evaluation; "positive" means occupied.

    ``tp``/``fp``/``tn``/``fn`` are answered spaces; ``unknown_occupied`` and
    ``unknown_free`` the labelled spaces answered ``unknown``, by their label.
    """

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    frames: int = 0
    seconds: float = 0.0
    unknown_occupied: int = 0
    unknown_free: int = 0
    unlabelled: int = 0
    skipped_frames: int = 0

    @property
    def answered(self) -> int:
        """Labelled spaces answered ``free`` or ``occupied``."""
        return self.tp + self.fp + self.tn + self.fn

    @property
    def spaces(self) -> int:
        """Labelled spaces scored, ``unknown`` answers included."""
        return self.answered + self.unknown_occupied + self.unknown_free

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def classes(self) -> dict[str, dict[str, int]]:
        """Per labelled class: how many, and how they were answered."""
        return {
            "occupied": {"labelled": self.tp + self.fn + self.unknown_occupied, "as_occupied": self.tp,
                         "as_free": self.fn, "as_unknown": self.unknown_occupied},
            "free": {"labelled": self.tn + self.fp + self.unknown_free, "as_free": self.tn,
                     "as_occupied": self.fp, "as_unknown": self.unknown_free},
        }

    def summary(self) -> dict[str, Any]:
        """Accuracy, both classes' precision/recall, unknown share, counts and ms per frame (JSON-able)."""
        precision = _ratio(self.tp, self.tp + self.fp)
        recall = _ratio(self.tp, self.tp + self.fn)
        precision_free = _ratio(self.tn, self.tn + self.fn)
        recall_free = _ratio(self.tn, self.tn + self.fp)
        return {
            "accuracy": _ratio(self.tp + self.tn, self.spaces),
            "accuracy_answered": _ratio(self.tp + self.tn, self.answered),
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "precision_occupied": precision,
            "recall_occupied": recall,
            "recall_occupied_all": _ratio(self.tp, self.tp + self.fn + self.unknown_occupied),
            "precision_free": precision_free,
            "recall_free": recall_free,
            "unknown_share": _ratio(self.unknown_occupied + self.unknown_free, self.spaces),
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "unknown_occupied": self.unknown_occupied,
            "unknown_free": self.unknown_free,
            "classes": self.classes(),
            "spaces": self.spaces,
            "answered": self.answered,
            "unlabelled": self.unlabelled,
            "frames": self.frames,
            "skipped_frames": self.skipped_frames,
            "ms_per_frame": _ratio(1000.0 * self.seconds, self.frames),
        }


def _ratio(a: float, b: float) -> float:
    return float(a) / b if b else 0.0


def confusion(results: Iterable[SpaceResult], labels: Mapping[str, bool], seconds: float = 0.0) -> Confusion:
    """Score one frame's results against its labels (unlabelled spaces counted apart)."""
    counts = dict.fromkeys(("tp", "fp", "tn", "fn", "unknown_occupied", "unknown_free", "unlabelled"), 0)
    for result in results:
        truth = labels.get(result.space_id)
        counts[_cell(truth, result.state)] += 1
    return Confusion(frames=1, seconds=seconds, **counts)


def _cell(truth: bool | None, state: str) -> str:
    if truth is None:
        return "unlabelled"
    if state == "unknown":
        return "unknown_occupied" if truth else "unknown_free"
    if state == "occupied":
        return "tp" if truth else "fp"
    return "fn" if truth else "tn"
