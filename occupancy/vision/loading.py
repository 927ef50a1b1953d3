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

from occupancy.vision.adapt import Adaptation, observe_frame
from occupancy.vision.detector import Detector
from occupancy.vision.errors import FrameError, LayoutError
from occupancy.vision.evaluate import Confusion, confusion
from occupancy.vision.layout import Layout, PklotAnnotation, parse_pklot_xml

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


def first_layout(root: Path) -> Layout | None:
    """The layout of the first usable PKLot XML under ``root`` (``None`` if there is none)."""
    for _, xml in labelled_frames(root):
        try:
            return read_annotation(xml, lenient=True).layout
        except LayoutError:
            continue
    return None


def adapt_folder(detector: Detector, adaptation: Adaptation, root: Path, layout: Layout,
                 notes: Notes = _ignore) -> int:
    """Count every image under ``root`` (sorted by path) into ``adaptation``; returns how many.

    An image beside a PKLot XML uses that file's layout (its labels are not
    read: the frames are unlabelled as far as adaptation goes); the others use
    ``layout`` (the camera's, e.g. from the frames to be scored).
    """
    used = 0
    for image in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        xml = image.with_suffix(".xml")
        try:
            frame = read_frame(image)
            own = read_annotation(xml, lenient=True).layout if xml.exists() else layout
        except (LayoutError, FrameError) as exc:
            notes(f"adaptation skipped {image}: {exc}")
            continue
        observe_frame(adaptation, detector, frame, own)
        used += 1
    return used
