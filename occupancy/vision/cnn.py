"""A small convolutional occupancy model, run through OpenCV's ``cv2.dnn`` (ONNX).

The network is trained by ``scripts/train_cnn.py`` (PyTorch, training only)
and shipped as two files: the ONNX graph and a JSON description beside it
(``{"kind": "cnn", "onnx": "detector_cnn.onnx", "patch": [w, h],
"margin": [mx, my], ...}``). At run time only OpenCV and numpy are needed.

Input: each space is rectified *with a context margin* (a car parked across
the line still shows), then standardised per patch (:func:`standardise`):
per-channel mean removed, divided by the patch's own contrast. Absolute
brightness, colour cast and gain of the camera are gone before the network
sees anything. All spaces of a frame go through the network as one batch.
A ``cv2.dnn.Net`` keeps state between ``setInput`` and ``forward``: use one
model (one :class:`~occupancy.vision.detector.Detector`) per thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from occupancy.vision.errors import ModelError
from occupancy.vision.rectify import PatchSpec

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

# contrast floor, in grey levels: a flat patch is not blown up into noise
CONTRAST_FLOOR = 4.0


def standardise(patches: NDArray[np.uint8]) -> F32:
    """``N × H × W × 3`` uint8 patches → ``N × 3 × H × W`` float32 network input.

    Each patch loses its per-channel mean and is divided by its RMS contrast
    (over all channels) plus :data:`CONTRAST_FLOOR`. (``blobFromImages`` does
    the layout change in C++; the reductions run over contiguous rows.)
    """
    n, height, width, channels = patches.shape
    if n == 0:
        return np.zeros((0, channels, height, width), dtype=np.float32)
    x = np.asarray(cv2.dnn.blobFromImages(list(patches)), dtype=np.float32)
    flat = x.reshape(n, channels, height * width)
    flat -= flat.mean(axis=2, keepdims=True)
    rms = np.sqrt(np.einsum("ncp,ncp->n", flat, flat) / (channels * height * width))
    flat *= (1.0 / (rms + CONTRAST_FLOOR)).astype(np.float32)[:, None, None]
    return x


def _read_onnx(path: Path) -> Any:
    """The ONNX network through OpenCV's classic engine where OpenCV offers a choice (5.x).

    OpenCV 5.0's default engine runs this small network 1.5x slower on one core
    (35 vs 23 ms for 100 patches here; OpenCV 4.x, which has only the classic
    engine: 21 ms), which would miss the 25 frames/s target (docs/vision.md, Speed).
    """
    classic = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    if classic is None:
        return cv2.dnn.readNetFromONNX(str(path))
    return cv2.dnn.readNetFromONNX(str(path), engine=classic)


def _sigmoid(z: F64) -> F64:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


@dataclass(frozen=True)
class CnnModel:
    """The ONNX network and how to feed it.

    ``flips`` averages the logits of the patch and its 180° turn (the
    patch's orientation is ambiguous; this makes the score exactly invariant
    to it at twice the cost). ``offset`` is added to the logit before the
    sigmoid (a calibration shift, 0 when trained).
    """

    net: Any  # cv2.dnn.Net (untyped in OpenCV's stubs)
    spec: PatchSpec
    flips: bool = True
    offset: float = 0.0

    def logits(self, patches: NDArray[np.uint8]) -> F64:
        """Raw network output (one logit per patch)."""
        if len(patches) == 0:
            return np.zeros(0)
        blob = standardise(patches)
        if self.flips:
            blob = np.concatenate([blob, np.ascontiguousarray(blob[:, :, ::-1, ::-1])])
        self.net.setInput(blob)
        out = np.asarray(self.net.forward(), dtype=np.float64).reshape(-1)
        if self.flips:
            out = 0.5 * (out[: len(patches)] + out[len(patches) :])
        return out + self.offset

    def probability_of_patches(self, patches: NDArray[np.uint8]) -> F64:
        """Occupancy probability of each rectified patch."""
        return _sigmoid(self.logits(patches))

    @classmethod
    def from_description(cls, data: dict[str, Any], folder: Path) -> CnnModel:
        """Build from a parsed JSON description; the ONNX path is relative to ``folder``."""
        try:
            onnx = folder / str(data["onnx"])
            width, height = (int(v) for v in data["patch"])
            mx, my = (float(v) for v in data["margin"])
            flips = bool(data.get("flips", True))
            offset = float(data.get("offset", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"not a cnn model description: {exc}") from exc
        try:
            net = _read_onnx(onnx)
        except cv2.error as exc:
            raise ModelError(f"cannot load ONNX network {onnx}: {exc}") from exc
        return cls(net, PatchSpec(width, height, (mx, my)), flips, offset)

    @classmethod
    def load(cls, path: Path | str) -> CnnModel:
        """Read a JSON description (and the ONNX file it names)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read model {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("kind") != "cnn":
            raise ModelError(f"{path} is not a cnn model description")
        return cls.from_description(data, path.parent)
