"""Detector speed at 1280×720 with 100 spaces on one core.

    python bench/vision.py [--frames N]

Frames: the PKLot UFPR05 stream (de Almeida et al. 2015, CC BY 4.0) from
``<repo>/../shared/datasets/pklot-ufpr05``, or random frames when it is
missing. Layout: the 40 real UFPR05 polygons plus 60 generated ones (shifted
copies), 100 spaces. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from occupancy.vision.detector import Detector  # noqa: E402
from occupancy.vision.layout import Layout, Space, parse_pklot_xml  # noqa: E402

DATA = REPO.parent / "shared" / "datasets" / "pklot-ufpr05"


def layout_of_100() -> Layout:
    xml = sorted((DATA / "labelled").rglob("*.xml"))
    if xml:
        real = parse_pklot_xml(xml[0].read_text()).layout.spaces
    else:
        real = tuple(
            Space(str(i), ((100.0, 100.0), (180.0, 100.0), (180.0, 140.0), (100.0, 140.0))) for i in range(40)
        )
    spaces = list(real)
    rng = np.random.default_rng(0)
    while len(spaces) < 100:
        base = real[len(spaces) % len(real)]
        dx, dy = rng.uniform(-80, 80, 2)
        moved = tuple((min(1270.0, max(5.0, x + dx)), min(710.0, max(5.0, y + dy))) for x, y in base.polygon)
        spaces.append(Space(f"g{len(spaces)}", moved))
    return Layout(tuple(spaces))


def frames(count: int) -> list[np.ndarray]:
    paths = sorted((DATA / "stream-2013-02-24").glob("*.jpg"))[:count]
    loaded = [cv2.imread(str(p)) for p in paths]
    if not loaded:
        rng = np.random.default_rng(0)
        loaded = [rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8) for _ in range(count)]
    return [f for f in loaded if f is not None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    detector = Detector.load()
    layout = layout_of_100()
    images = frames(args.frames)
    detector.detect(images[0], layout)  # warps planned once per layout, as in a camera loop
    start = time.perf_counter()
    for image in images:
        detector.detect(image, layout)
    seconds = time.perf_counter() - start
    ms = 1000.0 * seconds / len(images)
    print(f"{len(images)} frames of {images[0].shape[1]}x{images[0].shape[0]}, {len(layout.spaces)} spaces")
    print(f"{ms:.2f} ms per frame, {ms / len(layout.spaces) * 1000:.0f} us per space")
    print(
        json.dumps(
            {
                "frames_per_s": round(1000.0 / ms, 1),
                "ms_per_frame": round(ms, 2),
                "ms_per_space": round(ms / len(layout.spaces), 4),
                "spaces": len(layout.spaces),
                "frames": len(images),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
