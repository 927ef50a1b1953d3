"""Pure parts of the camera layout editor's chain: frame headers sniffed without decoding,
the layout file ``parkbazaar layout pull`` writes, a machine widened to new spaces, and a
camera's layout file read again when (and only when) it changes to something usable."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from dashboard_api import BadInput
from dashboard_api.frames import check_frame, sniff
from gateway.adapters.layout_watch import LayoutWatch
from gateway.devices import DeviceMachines
from occupancy.ids import SpaceRef
from occupancy.model import Source
from occupancy.statemachine import Policy
from occupancy.vision.layout import load_layout, site_file_text

IMAGE = np.zeros((30, 70, 3), np.uint8)
BAY = [[1.5, 1], [9, 1], [9, 9], [1, 9]]


@pytest.mark.parametrize(("suffix", "kind", "flags"), [
    (".png", "image/png", []),
    (".jpg", "image/jpeg", []),
    (".jpg", "image/jpeg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
])
def test_a_frame_s_type_and_size_come_from_its_header(suffix: str, kind: str, flags: list[int]) -> None:
    data = cv2.imencode(suffix, IMAGE, flags)[1].tobytes()
    picture = sniff(data)
    assert (picture.content_type, picture.width, picture.height) == (kind, 70, 30)
    assert check_frame(data, f"{kind}; charset=x") == picture


@pytest.mark.parametrize(("data", "declared", "words"), [
    (b"", None, "empty"),
    (b"GIF89a", None, "not a JPEG or PNG"),
    (b"\x89PNG\r\n\x1a\n\0\0", None, "truncated PNG"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", None, "without a readable frame header"),
    (cv2.imencode(".png", IMAGE)[1].tobytes(), "image/jpeg", "sent as image/jpeg but is image/png"),
])
def test_what_is_not_a_usable_frame_is_refused_by_name(data: bytes, declared: str | None, words: str) -> None:
    with pytest.raises(BadInput, match=words):
        check_frame(data, declared)


def test_the_pulled_layout_file_is_a_site_file_the_camera_reads(tmp_path: Path) -> None:
    path = tmp_path / "cam-2.yaml"
    path.write_text(site_file_text("lot", "cam-2", {"version": 7, "spaces": {"A-1": BAY, "7": BAY}}, "http://x"))
    layout = load_layout(path, "cam-2")
    assert layout.ids == ("A-1", "7") and layout.site_id == "lot"
    assert layout.spaces[0].polygon[0] == (1.5, 1.0)
    assert "layout version 7" in path.read_text().splitlines()[0]


def test_a_widened_machine_reads_its_new_spaces_and_keeps_the_old() -> None:
    a, b = SpaceRef.parse("lot/A-1"), SpaceRef.parse("lot/A-2")
    machines = DeviceMachines()
    machines.add("cam", [a], Policy(confirm_readings=1), Source.CAMERA)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert [str(d.space) for d in machines.observe("cam", t0, {a: 0.9})] == ["lot/A-1"]
    machines.widen("cam", [a, b])
    assert set(machines.machine("cam").tracks) == {a, b}
    assert machines.machine("cam").state(a).value == "occupied"
    assert [str(d.space) for d in machines.observe("cam", t0, {b: 0.1})] == ["lot/A-2"]


def _write(path: Path, spaces: dict[str, list[list[float]]], version: int) -> None:
    path.write_text(site_file_text("lot", "cam", {"version": version, "spaces": spaces}, "test"))
    os.utime(path, ns=(version * 10**9, version * 10**9))  # a new stamp even within one clock tick


def test_a_layout_file_is_read_again_only_when_it_changes_to_a_usable_layout(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cam.yaml"
    _write(path, {"A-1": BAY}, 1)
    watch = LayoutWatch(path, "cam", lambda s: "bound to device s-9" if s == "S-9" else None)
    assert watch.changed() is None  # as read at start
    _write(path, {"A-1": BAY, "A-2": BAY}, 2)
    new = watch.changed()
    assert new is not None and new.ids == ("A-1", "A-2")
    assert watch.changed() is None
    caplog.set_level(logging.ERROR)
    _write(path, {"A-1": BAY, "S-9": BAY}, 3)
    assert watch.changed() is None and "S-9 (bound to device s-9)" in caplog.text
    path.write_text("sites: [")
    assert watch.changed() is None and "not reloaded" in caplog.text
    path.unlink()
    assert watch.changed() is None
    _write(path, {"A-3": BAY}, 4)
    assert watch.changed() is not None and watch.reloads == 2
