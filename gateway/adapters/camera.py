"""A camera as a device: one frame per ``read``, scored by the detector.

Each ``read`` takes the next frame from the source (in a worker thread: the
detector and the capture block) and returns its reading: the detector's
probability of ``occupied`` for every space it can see
(``gateway.camera.CameraView``). The gateway's state machine for this device
debounces those readings like any sensor's: the camera's ``debounce``
section (default ``confirm_readings: 3``, i.e. three frames) is its policy.
A source that ends or fails raises ``AdapterError``; the spaces go
``unknown`` after the staleness bound. Before each frame the layout file is
looked at (``gateway.adapters.layout_watch``): a changed, usable layout is read
from that frame on, and ``spaces`` follows it (the service then watches any new
space too).

Adaptation (``adapt: true``, the default): every frame is also counted into
the camera's ``occupancy.vision.adapt.Adaptation``, whose per-space offsets
the detector applies; the state is written to
``<state_dir>/<gateway>.<camera>.adapt.json`` every :data:`SAVE_EVERY`
frames and on close, and read back at start, so it survives restarts. Its
progress (share of spaces adapted on their own) is ``adapted`` in the
device's health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.adapters import AdapterError
from gateway.adapters.layout_watch import LayoutWatch, space_check
from gateway.camera import CameraError, CameraView, CaptureFrames, Frame, FrameSource, folder_frames
from occupancy.ids import DeviceId, SpaceRef

if TYPE_CHECKING:
    from gateway.config import CameraDevice, GatewayConfig
    from occupancy.vision.adapt import Adaptation
    from occupancy.vision.detector import OperatingPoint

log = logging.getLogger(__name__)
SAVE_EVERY = 20  # frames between writes of the adaptation state


class CameraAdapter:
    """A frame source and a ``CameraView``: one frame's reading per ``read``."""

    kind = "camera"
    battery: float | None = None

    def __init__(self, source: FrameSource, view: CameraView, device: str,
                 store: Path | None = None) -> None:
        self.source = source
        self.view = view
        self.device = DeviceId(device)
        self.spaces = view.spaces
        self.store = store
        self._frames: Iterator[tuple[datetime, Frame]] | None = None
        self.layout_watch: LayoutWatch | None = None  # set by ``camera_adapter``
        self.site: str | None = None

    @property
    def adapted(self) -> float | None:
        """Adaptation progress for the health message (``None``: not adapting)."""
        return self.view.adapted

    async def read(self) -> Mapping[SpaceRef, float]:
        return await asyncio.to_thread(self._next)

    def _next(self) -> dict[SpaceRef, float]:
        self._reload()
        try:
            if self._frames is None:
                self._frames = iter(self.source)
            _, frame = next(self._frames)
            reading = self.view.reading(frame)
            if self.view.adaptation is not None and self.view.adaptation.frames % SAVE_EVERY == 0:
                self.save()
            return reading
        except StopIteration as exc:
            self._frames = None
            raise AdapterError(f"camera {self.device}: the source ended") from exc
        except (CameraError, OSError, ValueError) as exc:
            self._frames = None
            raise AdapterError(f"camera {self.device}: {exc}") from exc

    def _reload(self) -> None:
        """A changed layout file, if any, from this frame on (``gateway.adapters.layout_watch``)."""
        layout = self.layout_watch.changed() if self.layout_watch is not None else None
        if layout is not None and self.site is not None:
            self.view.relayout(layout, self.site)
            self.spaces = self.view.spaces

    def save(self) -> None:
        """Write the adaptation state (atomically: a crash leaves the old file); errors are logged."""
        if self.store is None or self.view.adaptation is None:
            return
        temporary = self.store.with_name(self.store.name + ".tmp")
        try:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(self.view.adaptation.to_json(), encoding="utf-8")
            os.replace(temporary, self.store)
        except OSError as exc:
            log.warning("camera %s: cannot save its adaptation to %s: %s", self.device, self.store, exc)

    async def close(self) -> None:
        self._frames = None
        await asyncio.to_thread(self.save)


def frame_source(config: GatewayConfig, device: CameraDevice) -> FrameSource:
    """A folder of images, or a video file / stream URL."""
    path = config.path(Path(device.source))
    if "://" not in device.source and path.is_dir():
        return folder_frames(path)
    source = device.source if "://" in device.source else str(path)
    return CaptureFrames(source, live=device.live, every=device.every)


def camera_adapter(config: GatewayConfig, device: CameraDevice) -> CameraAdapter:
    """The camera of a config entry: its source, layout (read again when its file
    changes), detector model, operating point and adaptation."""
    from occupancy.vision.detector import DEFAULT_DETECTOR, Detector, OperatingPoint
    from occupancy.vision.layout import load_layout

    layout = load_layout(config.path(device.layout), device.id)
    point = (OperatingPoint.threshold(device.threshold) if device.threshold is not None
             else OperatingPoint(*device.unknown_band) if device.unknown_band is not None else None)
    detector = Detector.load(config.path(device.model) if device.model else DEFAULT_DETECTOR, point)
    policy = config.policy(device)
    store = config.path(config.state_dir) / f"{config.gateway}.{device.id}.adapt.json"
    adaptation = load_adaptation(store, detector.operating) if device.adapt else None
    view = CameraView(layout, detector, device.site, (policy.leave, policy.enter), adaptation)
    adapter = CameraAdapter(frame_source(config, device), view, device.id, store if device.adapt else None)
    adapter.layout_watch = LayoutWatch(config.path(device.layout), device.id, space_check(config, device))
    adapter.site = device.site
    return adapter


def load_adaptation(store: Path, point: OperatingPoint) -> Adaptation:
    """The stored adaptation of a camera, or a fresh one (a bad file is logged and set aside)."""
    from occupancy.vision.adapt import Adaptation, AdaptationError

    if not store.exists():
        return Adaptation(point)
    try:
        return Adaptation.from_json(store.read_text(encoding="utf-8"), point)
    except (OSError, AdaptationError) as exc:
        aside = store.with_name(store.name + ".bad")
        log.warning("camera adaptation %s unusable (%s): starting afresh, kept as %s", store, exc, aside)
        with contextlib.suppress(OSError):
            os.replace(store, aside)
        return Adaptation(point)
