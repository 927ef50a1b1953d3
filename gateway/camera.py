"""The camera loop: frames in, confirmed per-space state changes out.

A :class:`FrameSource` yields ``(timestamp, frame)`` pairs; implementations
read a list of image files, a folder, or a video file / RTSP stream through
``cv2.VideoCapture``, and :class:`MemoryFrames` is the in-memory fake for
tests. :class:`CameraLoop` runs each frame through the detector and the
hysteresis and yields :class:`CameraChange` records. It knows nothing of
MQTT: the gateway node turns the records into wire events.

Errors: :class:`CameraError` (a source cannot be opened or read; cv2 and
file errors are translated at this boundary).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from occupancy.vision.detector import Detector
from occupancy.vision.layout import Layout
from occupancy.vision.smoothing import Change, Hysteresis

Frame = NDArray[np.uint8]
Clock = Callable[[], datetime]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)[_T ](\d\d)[_:.-](\d\d)[_:.-](\d\d)")


class CameraError(Exception):
    """A frame source cannot be opened or read."""


class FrameSource(Protocol):
    """Anything that yields ``(timestamp, BGR frame)`` pairs in time order."""

    def __iter__(self) -> Iterator[tuple[datetime, Frame]]: ...


def utc_now() -> datetime:
    """The default clock: aware UTC now."""
    return datetime.now(UTC)


def timestamp_from_name(path: Path) -> datetime | None:
    """``2013-02-24_06_15_00.jpg`` → that time (UTC), or ``None`` if the name has none."""
    match = _STAMP.search(path.stem)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@dataclass(frozen=True)
class MemoryFrames:
    """Frames already in memory: the fake source for tests and simulators."""

    frames: Sequence[tuple[datetime, Frame]]

    def __iter__(self) -> Iterator[tuple[datetime, Frame]]:
        return iter(self.frames)


@dataclass(frozen=True)
class FileFrames:
    """A list of image files, in the given order.

    Each file's time comes from its name (``YYYY-MM-DD_HH_MM_SS``) when it
    has one, else from its modification time.
    """

    paths: Sequence[Path]

    def __iter__(self) -> Iterator[tuple[datetime, Frame]]:
        for path in self.paths:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise CameraError(f"cannot read image {path}")
            yield self._time(path), np.asarray(frame, dtype=np.uint8)

    @staticmethod
    def _time(path: Path) -> datetime:
        named = timestamp_from_name(path)
        if named is not None:
            return named
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def folder_frames(folder: Path) -> FileFrames:
    """Every image in ``folder`` (not recursive), sorted by name."""
    if not folder.is_dir():
        raise CameraError(f"not a folder: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return FileFrames(paths)


@dataclass(frozen=True)
class CaptureFrames:
    """A video file or a stream URL (``rtsp://…``) read through ``cv2.VideoCapture``.

    Timestamps: for a file, ``start`` plus the frame's position in the video;
    for a live stream (``live=True``), the ``clock`` when the frame arrived.
    ``every`` keeps one frame in so many (a detector needs no 25 frames/s).
    """

    source: str
    live: bool = False
    every: int = 1
    start: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    clock: Clock = utc_now

    def __iter__(self) -> Iterator[tuple[datetime, Frame]]:
        capture = cv2.VideoCapture(self.source)
        if not capture.isOpened():
            raise CameraError(f"cannot open video source {self.source!r}")
        try:
            yield from self._frames(capture)
        finally:
            capture.release()

    def _frames(self, capture: cv2.VideoCapture) -> Iterator[tuple[datetime, Frame]]:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                return
            if index % max(1, self.every) == 0:
                yield self._time(capture), np.asarray(frame, dtype=np.uint8)
            index += 1

    def _time(self, capture: cv2.VideoCapture) -> datetime:
        if self.live:
            return self.clock()
        return self.start + timedelta(milliseconds=float(capture.get(cv2.CAP_PROP_POS_MSEC)))


@dataclass(frozen=True, slots=True)
class CameraChange:
    """A confirmed change of one space, ready for the gateway to publish."""

    space_id: str
    state: Literal["free", "occupied"]
    at: datetime
    confidence: float
    device: str


class CameraLoop:
    """Detector + hysteresis over a frame source, for one camera device.

    Iterating the loop reads the source to its end (a live stream: forever)
    and yields each confirmed change once, including the initial state of
    every space. Spaces the detector calls ``unknown`` (polygon off the
    frame) are not fed to the hysteresis.
    """

    def __init__(
        self,
        source: FrameSource,
        layout: Layout,
        detector: Detector,
        smoothing: Hysteresis,
        device: str,
    ) -> None:
        self.source = source
        self.layout = layout
        self.detector = detector
        self.smoothing = smoothing
        self.device = device

    def __iter__(self) -> Iterator[CameraChange]:
        for at, frame in self.source:
            yield from self.process(at, frame)

    def process(self, at: datetime, frame: Frame) -> list[CameraChange]:
        """Run one frame; return the changes it confirmed."""
        results = self.detector.detect(frame, self.layout)
        scores = {r.space_id: r.probability for r in results if r.state != "unknown"}
        return [self._record(change) for change in self.smoothing.step(scores, at)]

    def _record(self, change: Change) -> CameraChange:
        p = change.probability
        confidence = p if change.state == "occupied" else 1.0 - p
        return CameraChange(change.space_id, change.state, change.at, round(confidence, 4), self.device)
