"""Train (and honestly evaluate) the texture occupancy model (features + logistic regression).

The shipped default detector is the CNN trained by ``scripts/train_cnn.py``
(which reuses this script's data loading and augmentation); this texture
model stays available as ``occupancy/vision/model/detector.json``.

    python scripts/train_detector.py                 # train on all labelled frames, write the model
    python scripts/train_detector.py --evaluate      # print the validation table, write nothing

Data: ``<repo>/../shared/datasets/pklot-ufpr05/labelled`` (PKLot UFPR05,
de Almeida et al. 2015, CC BY 4.0), or ``--data``. Training frames are
augmented (scale, corner jitter, tilt, gain, gamma, colour cast, blur, noise,
JPEG) to imitate cameras the model has never seen.

Validation (``--evaluate``):
- leave-one-sequence-out: train on five sequences, test on the sixth;
- unseen spaces: train on spaces of one half of the image, test on the other
  half (left/right, near/far), also with the sequence held out;
- simulated cameras: the held-out sequence transformed (smaller, darker,
  brighter, colour cast, blur + noise + JPEG, tilted), none seen in training.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import augment  # noqa: E402  (scripts/augment.py, beside this script)

from occupancy.vision.features import FEATURES_VERSION, patch_features  # noqa: E402
from occupancy.vision.layout import Layout  # noqa: E402
from occupancy.vision.loading import labelled_frames, read_annotation, read_frame  # noqa: E402
from occupancy.vision.model import DEFAULT_MODEL, LogisticModel, fit_logistic  # noqa: E402
from occupancy.vision.rectify import plan_warps, rectify  # noqa: E402

DATA = REPO.parent / "shared" / "datasets" / "pklot-ufpr05" / "labelled"
Image = NDArray[np.uint8]
Transform = Callable[[Image, Layout, np.random.Generator], tuple[Image, Layout]]


@dataclass(frozen=True)
class Frame:
    """One labelled frame: which sequence, its image, layout and labels."""

    sequence: str
    image: Image
    layout: Layout
    labels: NDArray[np.bool_]
    centres: NDArray[np.float64]


@dataclass(frozen=True)
class Samples:
    """Feature rows with their label, sequence and normalised space centre."""

    x: NDArray[np.float32]
    y: NDArray[np.bool_]
    sequence: NDArray[np.str_]
    centre: NDArray[np.float64]

    def where(self, mask: NDArray[np.bool_]) -> Samples:
        return Samples(self.x[mask], self.y[mask], self.sequence[mask], self.centre[mask])

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        return Samples(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.sequence for p in parts]),
            np.concatenate([p.centre for p in parts]),
        )


def load_frames(root: Path) -> list[Frame]:
    frames = []
    for image_path, xml_path in labelled_frames(root):
        annotation = read_annotation(xml_path)
        layout = Layout(tuple(s for s in annotation.layout.spaces if s.id in annotation.labels))
        image = read_frame(image_path)
        height, width = image.shape[:2]
        centres = np.array([np.mean(s.polygon, axis=0) / (width, height) for s in layout.spaces])
        labels = np.array([annotation.labels[s.id] for s in layout.spaces])
        frames.append(Frame(image_path.parent.name, image, layout, labels, centres))
    return frames


def features_of(image: Image, layout: Layout) -> NDArray[np.float32]:
    return patch_features(rectify(image, plan_warps(layout)))


def samples_of(frame: Frame, image: Image, layout: Layout) -> Samples:
    n = len(layout.spaces)
    return Samples(features_of(image, layout), frame.labels, np.full(n, frame.sequence), frame.centres)


SHADOWS = 0.25  # share of training variants with synthetic sun shadows (--shadows)


def random_camera(image: Image, layout: Layout, rng: np.random.Generator) -> tuple[Image, Layout]:
    """One random imitation of another camera, for training."""
    layout = augment.shift(layout, 0.12, rng)
    layout = augment.jitter(layout, 0.05, rng)
    if rng.random() < 0.6:
        image, layout = augment.rescale(image, layout, float(rng.uniform(0.25, 1.0)))
    if rng.random() < 0.2:
        image, layout = augment.tilt(image, layout, 0.08, rng)
    if rng.random() < SHADOWS:
        image = augment.cast_shadows(image, rng)
    return augment.random_photometric(rng).apply(image, rng), layout


def training_samples(frames: list[Frame], variants: int, seed: int) -> Samples:
    rng = np.random.default_rng(seed)
    parts = []
    for frame in frames:
        parts.append(samples_of(frame, frame.image, frame.layout))
        for _ in range(variants):
            image, layout = random_camera(frame.image, frame.layout, rng)
            parts.append(samples_of(frame, image, layout))
    return Samples.concat(parts)


def _fixed(photometric: augment.Photometric, scale: float = 1.0) -> Transform:
    def transform(image: Image, layout: Layout, rng: np.random.Generator) -> tuple[Image, Layout]:
        if scale != 1.0:
            image, layout = augment.rescale(image, layout, scale)
        return photometric.apply(image, rng), layout

    return transform


def _shadowed(image: Image, layout: Layout, rng: np.random.Generator) -> tuple[Image, Layout]:
    return augment.cast_shadows(image, rng), layout


def _tilted(image: Image, layout: Layout, rng: np.random.Generator) -> tuple[Image, Layout]:
    image, layout = augment.tilt(image, layout, 0.12, rng)
    return augment.rescale(image, layout, 0.5)


SIMULATED: dict[str, Transform] = {
    "as is": _fixed(augment.Photometric()),
    "1/2 size": _fixed(augment.Photometric(), 0.5),
    "1/3 size": _fixed(augment.Photometric(), 0.33),
    "dusk (gain .35, gamma 1.6)": _fixed(augment.Photometric(gain=0.35, gamma=1.6)),
    "overexposed (gain 1.7, gamma .7)": _fixed(augment.Photometric(gain=1.7, gamma=0.7)),
    "blue cast, low saturation": _fixed(augment.Photometric(cast=(1.25, 1.0, 0.8), saturation=0.5)),
    "blur 1.5 + noise 5 + JPEG 30, 1/2 size": _fixed(augment.Photometric(blur=1.5, noise=5.0, jpeg=30), 0.5),
    "tilted 12 % + 1/2 size": _tilted,
    "synthetic shadows": _shadowed,
}


def accuracy(model: LogisticModel, samples: Samples) -> float:
    return float(((model.probability(samples.x) >= 0.5) == samples.y).mean())


def fit(samples: Samples, l2: float) -> LogisticModel:
    return fit_logistic(samples.x, samples.y, l2=l2, features=FEATURES_VERSION)


def loso(frames: list[Frame], args: argparse.Namespace) -> None:
    sequences = sorted({f.sequence for f in frames})
    rng = np.random.default_rng(args.seed + 1)
    scores: dict[str, list[float]] = {name: [] for name in SIMULATED}
    for held in sequences:
        train = training_samples([f for f in frames if f.sequence != held], args.variants, 7)
        model = fit(train, args.l2)
        for name, transform in SIMULATED.items():
            test = Samples.concat(
                [samples_of(f, *transform(f.image, f.layout, rng)) for f in frames if f.sequence == held]
            )
            scores[name].append(accuracy(model, test))
        print(f"  held out {held}: {scores['as is'][-1]:.4f}", flush=True)
    print("\nleave-one-sequence-out accuracy (mean over 6 folds, min fold):")
    for name, values in scores.items():
        print(f"  {name:42s} {np.mean(values):.4f}  (min {np.min(values):.4f})")


def unseen_spaces(frames: list[Frame], args: argparse.Namespace) -> None:
    train_all = training_samples(frames, args.variants, 7)
    plain = Samples.concat([samples_of(f, f.image, f.layout) for f in frames])
    print("\nunseen spaces (train on one half of the image, test the other half):")
    for name, axis in (("left -> right", 0), ("near -> far", 1)):
        for flip in (False, True):
            train_mask = (train_all.centre[:, axis] < 0.5) != flip
            test_mask = (plain.centre[:, axis] >= 0.5) != flip
            model = fit(train_all.where(train_mask), args.l2)
            print(f"  {name} {'(swapped)' if flip else '':10s} {accuracy(model, plain.where(test_mask)):.4f}")


def main() -> int:
    global SHADOWS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--variants", type=int, default=8, help="augmented copies per frame")
    parser.add_argument("--l2", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shadows", type=float, default=SHADOWS, help="share of shadowed variants")
    parser.add_argument("--evaluate", action="store_true", help="validate, write nothing")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"no training data at {args.data}", file=sys.stderr)
        return 2
    SHADOWS = args.shadows
    frames = load_frames(args.data)
    print(f"{len(frames)} frames, {sum(len(f.labels) for f in frames)} labelled spaces")
    if args.evaluate:
        loso(frames, args)
        unseen_spaces(frames, args)
        return 0
    samples = training_samples(frames, args.variants, args.seed)
    model = fit(samples, args.l2)
    print(f"trained on {len(samples.y)} samples; training accuracy {accuracy(model, samples):.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(model.to_json() + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
