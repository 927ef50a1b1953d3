"""Camera occupancy: which spaces a fixed camera sees as free or occupied.

Pure core: a frame (a BGR ``numpy`` array) and a :class:`Layout` go in,
per-space results come out (:class:`Detector`). A frame's per-space
probabilities are a *reading*: the gateway's occupancy state machine
(``occupancy/statemachine.py``, the same one bay sensors feed) debounces them
into confirmed state changes (``gateway.camera``). The shipped
model is a small CNN run by OpenCV's ``cv2.dnn`` (:class:`CnnModel`); the
texture model (:class:`LogisticModel`) is kept as an alternative. Nothing
here opens a camera, a file or a socket, except the clearly named loaders:
:func:`load_layout`, :func:`load_model`, :meth:`LogisticModel.load`, and
``occupancy.vision.loading`` (read frames and PKLot XML, walk labelled folders,
score a detector over them). The scoring itself (``occupancy.vision.evaluate``)
is pure.

Exceptions (part of the tree drawn in ``occupancy/__init__.py``)::

    VisionError            base of everything raised here (an OccupancyError)
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

__all__ = [
    "CnnModel",
    "Detector",
    "FrameError",
    "Labels",
    "Layout",
    "LayoutError",
    "LogisticModel",
    "ModelError",
    "PklotAnnotation",
    "Space",
    "SpaceResult",
    "VisionError",
    "layout_from_bounding_boxes",
    "layout_from_site_device",
    "load_layout",
    "load_model",
    "parse_pklot_xml",
]
