"""A logistic-regression occupancy model: numpy inference, JSON weights.

The model standardises each feature (training mean and scale), then applies
one linear layer and a sigmoid. It is small enough to read: the shipped file
holds a few dozen numbers and the feature layout version it was trained for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from occupancy.vision.errors import ModelError

F64 = NDArray[np.float64]
DEFAULT_MODEL = Path(__file__).with_name("model") / "detector.json"


@dataclass(frozen=True, slots=True)
class LogisticModel:
    """Standardise, weigh, squash: ``p = sigmoid(w · (x - mean) / scale + b)``."""

    mean: F64
    scale: F64
    weights: F64
    bias: float
    features: str

    def probability(self, x: NDArray[np.floating]) -> F64:
        """Occupancy probability for each row of ``x`` (``N × D``)."""
        if x.shape[1] != self.weights.shape[0]:
            raise ModelError(f"model wants {self.weights.shape[0]} features, got {x.shape[1]}")
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))

    def to_json(self) -> str:
        """The model as a JSON document."""
        return json.dumps(
            {
                "kind": "logistic",
                "features": self.features,
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "weights": self.weights.tolist(),
                "bias": self.bias,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> LogisticModel:
        """Parse a model written by :meth:`to_json`."""
        try:
            data = json.loads(text)
            model = cls(
                mean=np.asarray(data["mean"], dtype=np.float64),
                scale=np.asarray(data["scale"], dtype=np.float64),
                weights=np.asarray(data["weights"], dtype=np.float64),
                bias=float(data["bias"]),
                features=str(data["features"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"not a logistic model document: {exc}") from exc
        if not model.mean.shape == model.scale.shape == model.weights.shape:
            raise ModelError("model vectors differ in length")
        return model

    @classmethod
    def load(cls, path: Path | str = DEFAULT_MODEL) -> LogisticModel:
        """Read a model file (the shipped one by default)."""
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelError(f"cannot read model {path}: {exc}") from exc


def fit_logistic(
    x: NDArray[np.floating],
    y: NDArray[np.bool_],
    *,
    l2: float = 1.0,
    features: str = "",
    iterations: int = 50,
) -> LogisticModel:
    """Fit an L2-regularised logistic regression by Newton's method (IRLS)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    target = y.astype(np.float64)
    theta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ theta, -40.0, 40.0)))
        gradient = z.T @ (p - target) + penalty * theta
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.abs(step).max()) < 1e-7:
            break
    return LogisticModel(mean, scale, theta[:-1], float(theta[-1]), features)
