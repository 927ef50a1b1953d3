"""``parkbazaar vision`` subcommands, run in-process through the command's entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from parkbazaar.cli import main


def run(argv: list[str]) -> int:
    return main(["vision", *argv])


@pytest.fixture
def pklot_tree(pklot: Path, tmp_path: Path) -> Path:
    """Two frames + XMLs in PKLot's own folder layout (lot/weather/day)."""
    day = tmp_path / "UFPR05" / "Sunny" / "2013-04-12"
    day.mkdir(parents=True)
    for stem in ("2013-04-12_14_20_09", "2013-04-12_15_00_09"):
        for suffix in (".png", ".xml"):
            shutil.copy(pklot / "labelled" / "sequence5" / f"{stem}{suffix}", day)
    (day / "notes.xml").write_text("<parking/>")  # an XML without an image is ignored
    return tmp_path


def test_eval_prints_metrics(pklot_tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["eval", str(pklot_tree)]) == 0
    out = capsys.readouterr().out
    for word in ("accuracy", "precision", "recall", "f1", "TP", "ms/frame"):
        assert word in out


def test_eval_json(pklot_tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["eval", str(pklot_tree), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 2
    assert report["spaces"] == 80
    assert report["accuracy"] >= 0.95
    assert {"precision", "recall", "f1", "ms_per_frame", "tp", "fp", "tn", "fn"} <= set(report)


def test_eval_refuses_an_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["eval", str(tmp_path)]) == 2
    assert "no image" in capsys.readouterr().err


def test_overlay_writes_a_png(full_frame: tuple[Path, Path], tmp_path: Path) -> None:
    image, xml = full_frame
    out = tmp_path / "overlay.png"
    assert run(["overlay", str(image), str(xml), str(out)]) == 0
    drawn = cv2.imread(str(out))
    assert drawn is not None
    assert drawn.shape == cv2.imread(str(image)).shape


def test_overlay_with_a_site_file(full_frame: tuple[Path, Path], tmp_path: Path) -> None:
    image, _ = full_frame
    site = tmp_path / "site.yaml"
    site.write_text(
        "tenant: {id: t}\nsites:\n  - id: lot\n    devices:\n"
        "      - {id: cam-1, kind: camera, spaces: {A-1: [[608, 613], [741, 654], [775, 582], [608, 526]]}}\n"
    )
    assert run(["overlay", str(image), str(site), str(tmp_path / "o.png"), "--device", "cam-1"]) == 0
    assert run(["overlay", str(image), str(site), str(tmp_path / "o.png")]) == 2


def test_replay_prints_changes(pklot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = sorted((pklot / "stream-2013-02-24").glob("*.jpg"))[:4]
    for frame in frames:
        shutil.copy(frame, tmp_path)
    xml = next((pklot / "labelled" / "sequence0").glob("*.xml"))
    assert run(["replay", str(tmp_path), str(xml), "--confirm", "2", "--json"]) == 0
    changes = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # initial states only (a space scored in the dead band may still be unknown), nothing flaps
    assert len(changes) >= 36
    assert {c["from"] for c in changes} == {"unknown"}
    assert len({c["space"] for c in changes}) == len(changes)
    # from unknown the first vote is adopted: the first frame states them, at its own time
    assert changes[0]["frame"] == frames[0].name
    assert changes[0]["at"].startswith("2013-02-24T06:15")
