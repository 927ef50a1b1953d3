"""A camera as a device: ``gateway.camera.CameraLoop`` (detector + hysteresis) behind ``read``.

Each ``read`` takes the next frame from the source (in a worker thread: the
detector and the capture block), runs it through the loop and returns the
confirmed state of every space seen so far as a score (1 occupied, 0 free).
The camera's own hysteresis already debounced them, so its policy usually
keeps ``confirm_readings: 1``. A source that ends or fails raises
``AdapterError``; the spaces go ``unknown`` after the staleness bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.adapters import AdapterError
from gateway.camera import CameraError, CameraLoop, CaptureFrames, Frame, FrameSource, folder_frames
from occupancy.ids import DeviceId, SiteId, SpaceId, SpaceRef

if TYPE_CHECKING:
    from gateway.config import CameraDevice, GatewayConfig


class CameraAdapter:
    """A ``CameraLoop`` read one frame per ``read``."""

    kind = "camera"
    battery: float | None = None

    def __init__(self, loop: CameraLoop, site: SiteId) -> None:
        self._loop = loop
        self.device = DeviceId(loop.device)
        self._site = site
        self.spaces = tuple(SpaceRef(site, SpaceId(s)) for s in loop.layout.ids)
        self._frames: Iterator[tuple[datetime, Frame]] | None = None
        self._scores: dict[SpaceRef, float] = {}

    async def read(self) -> Mapping[SpaceRef, float]:
        return await asyncio.to_thread(self._next)

    def _next(self) -> dict[SpaceRef, float]:
        try:
            if self._frames is None:
                self._frames = iter(self._loop.source)
            at, frame = next(self._frames)
            changes = self._loop.process(at, frame)
        except StopIteration as exc:
            self._frames = None
            raise AdapterError(f"camera {self.device}: the source ended") from exc
        except (CameraError, OSError, ValueError) as exc:
            self._frames = None
            raise AdapterError(f"camera {self.device}: {exc}") from exc
        for c in changes:
            self._scores[SpaceRef(self._site, SpaceId(c.space_id))] = 1.0 if c.state == "occupied" else 0.0
        return dict(self._scores)

    async def close(self) -> None:
        self._frames = None


def frame_source(config: GatewayConfig, device: CameraDevice) -> FrameSource:
    """A folder of images, or a video file / stream URL."""
    path = config.path(Path(device.source))
    if "://" not in device.source and path.is_dir():
        return folder_frames(path)
    source = device.source if "://" in device.source else str(path)
    return CaptureFrames(source, live=device.live, every=device.every)


def camera_adapter(config: GatewayConfig, device: CameraDevice) -> CameraAdapter:
    """The camera of a config entry: its layout, the detector model, the smoothing."""
    from occupancy.vision.detector import Detector
    from occupancy.vision.layout import load_layout
    from occupancy.vision.smoothing import Hysteresis

    layout = load_layout(config.path(device.layout), device.id)
    detector = Detector.load(config.path(device.model)) if device.model else Detector.load()
    loop = CameraLoop(frame_source(config, device), layout, detector, Hysteresis(), device.id)
    return CameraAdapter(loop, SiteId(device.site))
