"""Scoring the detector against PKLot-format ground truth.

The pure part counts a confusion matrix (:class:`Confusion`) from
predictions and labels; the thin I/O part finds labelled frames in any
folder tree (each image beside a PKLot XML of the same stem, as in PKLot's
own ``PUCPR/Cloudy/2012-09-12/*.jpg`` layout) and runs the detector over them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from occupancy.vision.detector import Detector, SpaceResult
from occupancy.vision.errors import FrameError
from occupancy.vision.layout import PklotAnnotation, parse_pklot_xml

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


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


def labelled_frames(root: Path) -> Iterator[tuple[Path, Path]]:
    """Every ``(image, xml)`` pair under ``root`` (recursively, sorted by path)."""
    for xml in sorted(root.rglob("*.xml")):
        for suffix in IMAGE_SUFFIXES:
            for candidate in (xml.with_suffix(suffix), xml.with_suffix(suffix.upper())):
                if candidate.exists():
                    yield candidate, xml
                    break
            else:
                continue
            break


def read_frame(path: Path) -> Any:
    """Read a BGR frame, or raise :class:`FrameError`."""
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise FrameError(f"cannot read image {path}")
    return frame


def read_annotation(path: Path) -> PklotAnnotation:
    """Read and parse a PKLot XML file."""
    return parse_pklot_xml(path.read_text(encoding="utf-8", errors="replace"))


def evaluate_folder(detector: Detector, root: Path) -> Confusion:
    """Run ``detector`` over every labelled frame under ``root`` and count."""
    total = Confusion()
    for image, xml in labelled_frames(root):
        annotation = read_annotation(xml)
        frame = read_frame(image)
        start = time.perf_counter()
        results = detector.detect(frame, annotation.layout)
        total += confusion(results, annotation.labels, time.perf_counter() - start)
    return total
