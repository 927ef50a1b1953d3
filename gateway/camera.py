"""A camera: frame sources, per-frame readings, and the loop that debounces them.

A :class:`FrameSource` yields ``(timestamp, frame)`` pairs; implementations
read a list of image files, a folder, or a video file / RTSP stream through
``cv2.VideoCapture``, and :class:`MemoryFrames` is the in-memory fake for
tests. :class:`CameraView` turns one frame into a *reading*: the detector's
probability for every space it can see, keyed by ``SpaceRef``, the same kind
of input a bay sensor gives (its 0 or 1). The gateway's camera adapter hands
each reading to the gateway's state machine (``gateway.devices``).

:class:`CameraLoop` is the same path off-line (``parkbazaar vision replay``,
the day-stream test): it steps one ``occupancy.statemachine`` machine with
each frame's reading and yields the confirmed changes as
:class:`CameraChange`. The camera's confirm-frames / seconds are that
machine's ``Policy.confirm_readings`` / ``debounce_s``; a change carries the
time of the frame that confirmed it (see ``occupancy/statemachine.py``).

Errors: :class:`CameraError` (a ``GatewayError``: a source cannot be opened
or read; cv2 and file errors are translated at this boundary).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway import GatewayError
from gateway.devices import CAMERA_CONFIRM_READINGS
from occupancy.ids import SiteId, SpaceId, SpaceRef
from occupancy.model import SpaceState
from occupancy.statemachine import Machine, Observe, Output, Policy, new_machine, step
from occupancy.vision.adapt import Adaptation, observe_frame
from occupancy.vision.detector import Detector, SpaceResult
from occupancy.vision.layout import Layout

Frame = NDArray[np.uint8]
Clock = Callable[[], datetime]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
OFFLINE_SITE = "camera"  # the site of a layout that names none (PKLot XML), off-line only
CAMERA_POLICY = Policy(confirm_readings=CAMERA_CONFIRM_READINGS)
ADAPT_REFRESH = 10  # frames between recomputing a camera's adaptation offsets
_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)[_T ](\d\d)[_:.-](\d\d)[_:.-](\d\d)")


class CameraError(GatewayError):
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


class CameraView:
    """What one camera sees: a frame in, the reading of its spaces out.

    Spaces the detector calls ``unknown`` (unsure, or polygon off the frame)
    are left out of the reading: no reading, not a vote. The others' scores
    are put on the state machine's scale (:func:`machine_score`), so that
    the machine votes as the detector's operating point decided: ``band``
    is the machine policy's ``(leave, enter)``.
    """

    def __init__(self, layout: Layout, detector: Detector, site: str,
                 band: tuple[float, float] = (CAMERA_POLICY.leave, CAMERA_POLICY.enter),
                 adaptation: Adaptation | None = None) -> None:
        self.layout = layout
        self.detector = detector
        self.band = band
        self.adaptation = adaptation
        self.refs = {i: SpaceRef(SiteId(site), SpaceId(i)) for i in layout.ids}
        if adaptation is not None:
            detector.offsets = adaptation.offsets(layout.ids)

    @property
    def spaces(self) -> tuple[SpaceRef, ...]:
        return tuple(self.refs.values())

    def relayout(self, layout: Layout, site: str) -> None:
        """Read ``layout``'s polygons from the next frame on (its layout file changed).

        An adaptation keeps what it learnt per space id; a moved polygon keeps
        its bay's histogram (the bay is the same, its outline was redrawn)."""
        self.layout = layout
        self.refs = {i: SpaceRef(SiteId(site), SpaceId(i)) for i in layout.ids}
        if self.adaptation is not None:
            self.detector.offsets = self.adaptation.offsets(layout.ids)

    def reading(self, frame: Frame) -> dict[SpaceRef, float]:
        """Space → score of ``occupied`` for one frame (on the machine's scale).

        With an adaptation, the frame is also counted into it, and the
        offsets it teaches are refreshed every :data:`ADAPT_REFRESH` frames.
        """
        if self.adaptation is None:
            return self.scores(self.detector.detect(frame, self.layout))
        model = observe_frame(self.adaptation, self.detector, frame, self.layout)
        if self.adaptation.frames % ADAPT_REFRESH == 0:
            self.detector.offsets = self.adaptation.offsets(self.layout.ids)
        p = self.detector.adjusted(self.layout, model)
        return self.scores(self.detector.results(self.layout, p, frame.shape[1], frame.shape[0]))

    @property
    def adapted(self) -> float | None:
        """The share of spaces adapted on their own (``None`` without adaptation)."""
        return None if self.adaptation is None else self.adaptation.progress(self.layout.ids)

    def scores(self, results: Iterable[SpaceResult]) -> dict[SpaceRef, float]:
        """The reading of results the detector already gave."""
        point = self.detector.operating
        return {
            self.refs[r.space_id]: machine_score(r, point.free_below, point.occupied_from, self.band)
            for r in results
            if r.state != "unknown"
        }


def machine_score(result: SpaceResult, free_below: float, occupied_from: float,
                  band: tuple[float, float]) -> float:
    """The detector's probability moved onto the machine's scale, monotone and piecewise linear.

    ``[0, free_below)`` maps onto ``[0, leave)`` and ``[occupied_from, 1]``
    onto ``[enter, 1]``: a ``free`` answer votes free, an ``occupied`` one
    votes occupied, whatever the operating point (the machine's own dead
    band would otherwise drop answers the detector made, e.g. an occupied
    bay at p = 0.45 with the band starting at 0.4).
    """
    leave, enter = band
    p = result.probability
    if result.state == "occupied":
        if occupied_from >= 1.0:
            return enter
        return enter + (1.0 - enter) * (p - occupied_from) / (1.0 - occupied_from)
    return 0.0 if free_below <= 0.0 else leave * min(p, free_below) / free_below


@dataclass(frozen=True, slots=True)
class CameraChange:
    """A confirmed change of one space: ``previous`` is what the machine held before,
    ``probability`` the confirming frame's score of ``occupied``."""

    space_id: str
    previous: Literal["free", "occupied", "unknown"]
    state: Literal["free", "occupied"]
    at: datetime
    probability: float
    device: str

    @property
    def confidence(self) -> float:
        """How sure the confirming frame was of ``state`` (0.5..1 beyond the dead band)."""
        return round(self.probability if self.state == "occupied" else 1.0 - self.probability, 4)


class CameraLoop:
    """A frame source through a :class:`CameraView` and one state machine, off-line.

    Iterating the loop reads the source to its end (a live stream: forever)
    and yields each confirmed change once, including the first state of
    every space. A frame stamped earlier than the one before it counts at
    the earlier frame's time: the machine's time only moves forward. No
    heartbeats, no staleness: those need a clock, and belong to the gateway.
    """

    def __init__(self, source: FrameSource, layout: Layout, detector: Detector,
                 policy: Policy = CAMERA_POLICY, device: str = "camera",
                 site: str | None = None) -> None:
        self.source = source
        self.view = CameraView(layout, detector, site or layout.site_id or OFFLINE_SITE,
                               (policy.leave, policy.enter))
        self.device = device
        self.machine: Machine = new_machine(self.view.spaces, policy)

    @property
    def layout(self) -> Layout:
        return self.view.layout

    def __iter__(self) -> Iterator[CameraChange]:
        for at, frame in self.source:
            yield from self.process(at, frame)

    def process(self, at: datetime, frame: Frame) -> list[CameraChange]:
        """Run one frame; return the changes it confirmed."""
        return self.observe(at, self.view.reading(frame))

    def observe(self, at: datetime, reading: dict[SpaceRef, float]) -> list[CameraChange]:
        """Step the machine with one reading (a frame already scored)."""
        before = self.machine
        now = at if before.now is None else max(at, before.now)
        self.machine, outputs = step(before, Observe(now, reading))
        return [self._record(o, before.state(o.space)) for o in outputs]

    def _record(self, out: Output, previous: SpaceState) -> CameraChange:
        state: Literal["free", "occupied"] = "occupied" if out.state is SpaceState.OCCUPIED else "free"
        p = out.score if out.score is not None else 0.5  # an Observe output always has its score
        return CameraChange(str(out.space.space), previous.value, state, out.at, p, self.device)
