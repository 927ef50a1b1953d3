"""The exception tree of :mod:`occupancy.vision` (drawn in the package docstring)."""

from occupancy import OccupancyError


class VisionError(OccupancyError):
    """Base of every error raised by the camera occupancy code."""


class LayoutError(VisionError, ValueError):
    """A layout (PKLot XML, bounding_boxes.json, site file entry) is malformed."""


class ModelError(VisionError):
    """A detector model file is missing or malformed."""


class FrameError(VisionError, ValueError):
    """A frame is not a usable BGR or grey image."""
