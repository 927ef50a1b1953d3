"""Write UFPR05 frames seen through one "unseen camera" proxy as a PKLot-format tree.

    python scripts/shifted_tree.py "night (orange lamps, noise, JPEG)" OUT --sequences sequence4

Each labelled frame of the chosen sequences is transformed by
``augment.UNSEEN[NAME]`` (seeded) and written as ``OUT/<sequence>/<stem>.png``
with a PKLot XML of the transformed polygons and the original labels, so
that ``parkbazaar vision eval OUT --json [--adapt OTHER]`` scores the
detector on it exactly as on another lot. Validation only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import augment  # noqa: E402
import train_detector as td  # noqa: E402

from occupancy.vision.layout import Layout  # noqa: E402


def pklot_xml(layout: Layout, labels: np.ndarray) -> str:
    rows = []
    for space, occupied in zip(layout.spaces, labels, strict=True):
        points = "".join(f'<point x="{x:.1f}" y="{y:.1f}"/>' for x, y in space.polygon)
        label = int(occupied)
        rows.append(f'  <space id="{space.id}" occupied="{label}"><contour>{points}</contour></space>')
    return '<parking id="shifted">\n' + "\n".join(rows) + "\n</parking>\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(augment.UNSEEN))
    parser.add_argument("out", type=Path)
    parser.add_argument("--sequences", nargs="+", required=True)
    parser.add_argument("--data", type=Path, default=td.DATA)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    transform = augment.UNSEEN[args.name]
    for frame in td.load_frames(args.data):
        if frame.sequence not in args.sequences:
            continue
        image, layout = transform(frame.image, frame.layout, rng)
        folder = args.out / frame.sequence
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{len(list(folder.glob('*.png'))):03d}"
        cv2.imwrite(str(folder / f"{stem}.png"), image)
        (folder / f"{stem}.xml").write_text(pklot_xml(layout, frame.labels), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
