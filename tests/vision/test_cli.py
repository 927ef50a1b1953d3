"""``parkbazaar vision`` subcommands, run in-process through the command's entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from occupancy.vision.layout import PklotAnnotation
from occupancy.vision.loading import read_annotation
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


def _other_camera_xml(annotation: PklotAnnotation, scale: float) -> str:
    """The frame's spaces as another lot might write them: ids from 501 with gaps, half of them
    rotatedRect-only, one two-corner box, a tiny far-row space and one without a label."""
    rows = []
    for index, space in enumerate(annotation.layout.spaces):
        points = np.asarray(space.polygon) * scale
        label = int(annotation.labels[space.id])
        if index % 2:
            (cx, cy), (w, h), angle = cv2.minAreaRect(points.astype(np.float32))
            shape = (f'<rotatedRect><center x="{cx:.0f}" y="{cy:.0f}"/><size w="{w:.0f}" h="{h:.0f}"/>'
                     f'<angle d="{angle:.0f}"/></rotatedRect>')
        elif index == 4:
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            shape = f'<contour><point x="{x0:.0f}" y="{y0:.0f}"/><point x="{x1:.0f}" y="{y1:.0f}"/></contour>'
        else:
            corners = "".join(f'<Point x="{x:.0f}" y="{y:.0f}"/>' for x, y in points)
            shape = f"<contour>{corners}</contour>"
        rows.append(f'<space id="{501 + 3 * index}" occupied="{label}">{shape}</space>')
    rows.append('<space id="7"><contour><point x="3" y="3"/><point x="9" y="3"/><point x="9" y="6"/>'
                '<point x="3" y="6"/></contour></space>')  # unlabelled
    rows.append('<space id="8" occupied="0"><contour><point x="20" y="4"/><point x="23" y="4"/>'
                '<point x="23" y="5"/><point x="20" y="5"/></contour></space>')  # 3×1 px
    return f'<parking id="other">{"".join(rows)}</parking>'


def test_eval_json_on_another_camera_layout(
    full_frame: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image, xml = full_frame
    frame = cv2.imread(str(image))
    small = cv2.resize(frame, (1000, 563), interpolation=cv2.INTER_AREA)  # not 1280×720
    day = tmp_path / "OTHER" / "Cloudy" / "2020-01-01"
    day.mkdir(parents=True)
    cv2.imwrite(str(day / "a.png"), small)
    (day / "a.xml").write_text(_other_camera_xml(read_annotation(xml), 1000 / 1280))
    cv2.imwrite(str(day / "b.jpg"), small)
    (day / "b.xml").write_text("<parking><space id='1'>")  # broken: skipped, named, not fatal
    assert run(["eval", str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "skipped frame" in captured.err
    assert (report["frames"], report["skipped_frames"], report["unlabelled"]) == (1, 1, 1)
    assert report["spaces"] == 41  # 40 + the tiny one; the unlabelled one is not scored
    assert report["accuracy"] >= 0.9
    expected = {"accuracy", "accuracy_answered", "precision", "recall", "precision_free", "recall_free",
                "unknown_share", "classes", "spaces", "frames", "ms_per_frame"}
    assert expected <= set(report)
    assert report["classes"]["occupied"]["labelled"] + report["classes"]["free"]["labelled"] == 41


def test_eval_operating_point_options(pklot_tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["eval", str(pklot_tree), "--json", "--unknown-band", "0.0,1.0"]) == 0
    everything_unknown = json.loads(capsys.readouterr().out)
    assert everything_unknown["unknown_share"] == 1.0 and everything_unknown["accuracy"] == 0.0
    assert run(["eval", str(pklot_tree), "--json", "--threshold", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["unknown_share"] == 0.0
    with pytest.raises(SystemExit):
        run(["eval", str(pklot_tree), "--threshold", "0.5", "--unknown-band", "0.2,0.6"])
    with pytest.raises(SystemExit):
        run(["eval", str(pklot_tree), "--unknown-band", "0.7,0.2"])


def test_eval_adapt_counts_the_unlabelled_frames_first(
    pklot: Path, pklot_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = tmp_path / "stream"
    stream.mkdir()
    for frame in sorted((pklot / "stream-2013-02-24").glob("*.jpg"))[:4]:
        shutil.copy(frame, stream)
    assert run(["eval", str(pklot_tree), "--json", "--adapt", str(stream)]) == 0
    report = json.loads(capsys.readouterr().out)
    # an empty lot all morning: one state only, so no space learns anything
    assert report["adaptation"]["frames"] == 4
    assert report["adaptation"]["spaces_adapted"] == 0.0
    assert report["accuracy"] >= 0.95
    assert run(["eval", str(pklot_tree), "--adapt", str(tmp_path / "missing")]) == 2
