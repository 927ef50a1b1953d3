"""Confusion counting and the evaluation summary format."""

from __future__ import annotations

import pytest

from occupancy.vision.detector import SpaceResult
from occupancy.vision.evaluate import Confusion, confusion


def test_confusion_counts_and_skips() -> None:
    results = [
        SpaceResult("1", 0.9, "occupied"),
        SpaceResult("2", 0.8, "occupied"),
        SpaceResult("3", 0.1, "free"),
        SpaceResult("4", 0.2, "free"),
        SpaceResult("5", 0.5, "unknown"),
        SpaceResult("6", 0.9, "occupied"),
    ]
    labels = {"1": True, "2": False, "3": False, "4": True, "5": True}  # 6 unlabelled
    c = confusion(results, labels, seconds=0.02)
    assert (c.tp, c.fp, c.tn, c.fn, c.frames, c.spaces) == (1, 1, 1, 1, 1, 4)


def test_summary_format() -> None:
    total = Confusion(tp=8, fp=2, tn=9, fn=1, frames=2, seconds=0.05) + Confusion(frames=1)
    s = total.summary()
    assert set(s) >= {"accuracy", "precision", "recall", "f1", "spaces", "frames", "ms_per_frame"}
    assert s["accuracy"] == pytest.approx(17 / 20)
    assert s["precision"] == pytest.approx(0.8)
    assert s["recall"] == pytest.approx(8 / 9)
    assert s["f1"] == pytest.approx(2 * 0.8 * (8 / 9) / (0.8 + 8 / 9))
    assert (s["spaces"], s["frames"]) == (20, 3)
    assert s["ms_per_frame"] == pytest.approx(50 / 3)


def test_empty_summary_has_no_division_by_zero() -> None:
    assert Confusion().summary()["accuracy"] == 0.0
