"""Camera occupancy: which spaces a fixed camera sees as free or occupied.

Pure core: a frame (a BGR ``numpy`` array) and a :class:`Layout` go in,
per-space results come out (:class:`Detector`); consecutive results go
through :class:`Hysteresis` to become confirmed state changes. The shipped
model is a small CNN run by OpenCV's ``cv2.dnn`` (:class:`CnnModel`); the
texture model (:class:`LogisticModel`) is kept as an alternative. Nothing
here opens a camera, a file or a socket, except the small, clearly named
loaders (:func:`load_layout`, :func:`load_model`, :meth:`LogisticModel.load`).

Exceptions::

    VisionError            base of everything raised here
    ├── LayoutError        a layout file or site entry is malformed
    ├── ModelError         a model file is missing or malformed
    └── FrameError         a frame is not a usable image
"""

from occupancy.vision.cnn import CnnModel
from occupancy.vision.detector import Detector, SpaceResult, load_model
from occupancy.vision.errors import FrameError, LayoutError, ModelError, VisionError
from occupancy.vision.layout import (
    Labels,
    Layout,
    PklotAnnotation,
    Space,
    layout_from_bounding_boxes,
    layout_from_site_device,
    load_layout,
    parse_pklot_xml,
)
from occupancy.vision.model import LogisticModel
from occupancy.vision.smoothing import Change, Hysteresis, SmoothingConfig

__all__ = [
    "Change",
    "CnnModel",
    "Detector",
    "FrameError",
    "Hysteresis",
    "Labels",
    "Layout",
    "LayoutError",
    "LogisticModel",
    "ModelError",
    "PklotAnnotation",
    "SmoothingConfig",
    "Space",
    "SpaceResult",
    "VisionError",
    "layout_from_bounding_boxes",
    "layout_from_site_device",
    "load_layout",
    "load_model",
    "parse_pklot_xml",
]
