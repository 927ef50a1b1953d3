"""A camera as a device: one frame per ``read``, scored by the detector.

Each ``read`` takes the next frame from the source (in a worker thread: the
detector and the capture block) and returns its reading: the detector's
probability of ``occupied`` for every space it can see
(``gateway.camera.CameraView``). The gateway's state machine for this device
debounces those readings like any sensor's: the camera's ``debounce``
section (default ``confirm_readings: 3``, i.e. three frames) is its policy.
A source that ends or fails raises ``AdapterError``; the spaces go
``unknown`` after the staleness bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.adapters import AdapterError
from gateway.camera import CameraError, CameraView, CaptureFrames, Frame, FrameSource, folder_frames
from occupancy.ids import DeviceId, SpaceRef

if TYPE_CHECKING:
    from gateway.config import CameraDevice, GatewayConfig


class CameraAdapter:
    """A frame source and a ``CameraView``: one frame's reading per ``read``."""

    kind = "camera"
    battery: float | None = None

    def __init__(self, source: FrameSource, view: CameraView, device: str) -> None:
        self.source = source
        self.view = view
        self.device = DeviceId(device)
        self.spaces = view.spaces
        self._frames: Iterator[tuple[datetime, Frame]] | None = None

    async def read(self) -> Mapping[SpaceRef, float]:
        return await asyncio.to_thread(self._next)

    def _next(self) -> dict[SpaceRef, float]:
        try:
            if self._frames is None:
                self._frames = iter(self.source)
            _, frame = next(self._frames)
            return self.view.reading(frame)
        except StopIteration as exc:
            self._frames = None
            raise AdapterError(f"camera {self.device}: the source ended") from exc
        except (CameraError, OSError, ValueError) as exc:
            self._frames = None
            raise AdapterError(f"camera {self.device}: {exc}") from exc

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
    """The camera of a config entry: its source, layout and detector model."""
    from occupancy.vision.detector import DEFAULT_DETECTOR, Detector, OperatingPoint
    from occupancy.vision.layout import load_layout

    layout = load_layout(config.path(device.layout), device.id)
    point = (OperatingPoint.threshold(device.threshold) if device.threshold is not None
             else OperatingPoint(*device.unknown_band) if device.unknown_band is not None else None)
    detector = Detector.load(config.path(device.model) if device.model else DEFAULT_DETECTOR, point)
    policy = config.policy(device)
    view = CameraView(layout, detector, device.site, (policy.leave, policy.enter))
    return CameraAdapter(frame_source(config, device), view, device.id)
