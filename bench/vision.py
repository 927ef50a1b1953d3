"""Detector speed at 1280×720 with 100 spaces on one core.

    python bench/vision.py [--frames N] [--model FILE]

The shipped model by default (the CNN through ``cv2.dnn``); ``--model
occupancy/vision/model/detector.json`` times the texture model.

Frames: the PKLot UFPR05 stream (de Almeida et al. 2015, CC BY 4.0) from
``<repo>/../shared/datasets/pklot-ufpr05``, or random frames when it is
missing. Layout: the 40 real UFPR05 polygons plus 60 generated ones (shifted
copies), 100 spaces. The last line printed is one JSON object. ``frames_per_s`` is wall-clock;
``frames_per_cpu_s`` counts only this process's CPU time, which is what one
core would do on a quiet machine (use it when other work shares the cores).
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

from occupancy.vision.detector import DEFAULT_DETECTOR, Detector  # noqa: E402
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
    parser.add_argument("--model", type=Path, default=DEFAULT_DETECTOR)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    detector = Detector.load(args.model)
    layout = layout_of_100()
    images = frames(args.frames)
    detector.detect(images[0], layout)  # warps planned once per layout, as in a camera loop
    start, cpu_start = time.perf_counter(), time.process_time()
    for image in images:
        detector.detect(image, layout)
    seconds = time.perf_counter() - start
    cpu_ms = 1000.0 * (time.process_time() - cpu_start) / len(images)
    ms = 1000.0 * seconds / len(images)
    print(f"{len(images)} frames of {images[0].shape[1]}x{images[0].shape[0]}, {len(layout.spaces)} spaces")
    print(f"{ms:.2f} ms per frame, {ms / len(layout.spaces) * 1000:.0f} us per space")
    print(f"{cpu_ms:.2f} ms of CPU per frame (the figure to trust on a busy machine)")
    print(
        json.dumps(
            {
                "frames_per_s": round(1000.0 / ms, 1),
                "ms_per_frame": round(ms, 2),
                "ms_per_space": round(ms / len(layout.spaces), 4),
                "cpu_ms_per_frame": round(cpu_ms, 2),
                "frames_per_cpu_s": round(1000.0 / cpu_ms, 1),
                "spaces": len(layout.spaces),
                "frames": len(images),
                "model": args.model.name,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
