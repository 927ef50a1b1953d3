"""File and model I/O of the camera tools: read frames and PKLot XML, walk folders.

Everything that touches the disk for evaluation lives here, so that the rest
of ``occupancy.vision`` stays pure: :func:`read_frame` (an image file → a BGR
frame), :func:`read_annotation` (a PKLot XML file → layout and labels),
:func:`labelled_frames` (every image beside a PKLot XML of the same stem
under a folder tree, as in PKLot's own ``PUCPR/Cloudy/2012-09-12/*.jpg``) and
:func:`evaluate_folder` (a detector over such a tree, scored with the pure
``occupancy.vision.evaluate.confusion``). Loading a model is
``Detector.load`` / ``load_model``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2

from occupancy.vision.detector import Detector
from occupancy.vision.errors import FrameError, LayoutError
from occupancy.vision.evaluate import Confusion, confusion
from occupancy.vision.layout import PklotAnnotation, parse_pklot_xml

Notes = Callable[[str], None]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


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
    """Read a BGR frame (any size; grey and 16-bit images are converted), or raise :class:`FrameError`."""
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None or frame.size == 0:
        raise FrameError(f"cannot read image {path}")
    return frame


def read_annotation(path: Path, lenient: bool = False) -> PklotAnnotation:
    """Read and parse a PKLot XML file (``lenient``: see :func:`parse_pklot_xml`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LayoutError(f"cannot read {path}: {exc}") from exc
    try:
        return parse_pklot_xml(data, lenient=lenient)
    except LayoutError as exc:
        raise LayoutError(f"{path}: {exc}") from exc


def _ignore(note: str) -> None:
    del note


def evaluate_folder(detector: Detector, root: Path, notes: Notes = _ignore) -> Confusion:
    """Run ``detector`` over every labelled frame under ``root`` and count.

    A frame whose image or XML cannot be used is skipped and counted in
    ``skipped_frames``; it and every repair of a lenient parse are passed to
    ``notes`` (one line each), so nothing is dropped silently.
    """
    total = Confusion()
    for image, xml in labelled_frames(root):
        try:
            annotation = read_annotation(xml, lenient=True)
            frame = read_frame(image)
        except (LayoutError, FrameError) as exc:
            notes(f"skipped frame: {exc}")
            total += Confusion(skipped_frames=1)
            continue
        for note in annotation.notes:
            notes(f"{xml}: {note}")
        start = time.perf_counter()
        results = detector.detect(frame, annotation.layout)
        total += confusion(results, annotation.labels, time.perf_counter() - start)
    return total
