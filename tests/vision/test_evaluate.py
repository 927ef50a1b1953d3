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
    assert (c.tp, c.fp, c.tn, c.fn, c.frames, c.answered) == (1, 1, 1, 1, 1, 4)
    # an unknown answer on a labelled space is scored (kept apart), an unlabelled space is not
    assert (c.unknown_occupied, c.unknown_free, c.unlabelled, c.spaces) == (1, 0, 1, 5)


def test_unknown_counts_wrong_in_accuracy_but_not_in_precision_recall() -> None:
    c = Confusion(tp=90, fp=1, tn=100, fn=2, frames=1, unknown_occupied=5, unknown_free=2)
    s = c.summary()
    assert s["spaces"] == 200 and s["answered"] == 193
    assert s["accuracy"] == pytest.approx(190 / 200)
    assert s["accuracy_answered"] == pytest.approx(190 / 193)
    assert s["precision"] == s["precision_occupied"] == pytest.approx(90 / 91)
    assert s["recall"] == s["recall_occupied"] == pytest.approx(90 / 92)
    assert s["recall_occupied_all"] == pytest.approx(90 / 97)
    assert s["precision_free"] == pytest.approx(100 / 102)
    assert s["recall_free"] == pytest.approx(100 / 101)
    assert s["unknown_share"] == pytest.approx(7 / 200)
    assert s["classes"] == {
        "occupied": {"labelled": 97, "as_occupied": 90, "as_free": 2, "as_unknown": 5},
        "free": {"labelled": 103, "as_free": 100, "as_occupied": 1, "as_unknown": 2},
    }


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
