"""Rendered camera frames through the real detector: accuracy is measured, the report drawn."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import yaml

from occupancy.sitefile import parse_site_file
from occupancy.vision.detector import Detector
from occupancy.vision.evaluate import Confusion, confusion
from simulators.camera import Cameras
from simulators.engine import Engine
from simulators.render import grid_layout, render
from simulators.report import write_reports
from simulators.scenario import parse_scenario

START = datetime(2026, 11, 26, 9, 0, tzinfo=ZoneInfo("Asia/Tehran"))


def test_render_is_deterministic_and_draws_cars_only_where_occupied() -> None:
    layout = grid_layout([f"A-{i:03d}" for i in range(1, 31)], per_row=15)
    a = render(layout, {"A-001"}, 12.0, np.random.default_rng(1))
    b = render(layout, {"A-001"}, 12.0, np.random.default_rng(1))
    empty = render(layout, set(), 12.0, np.random.default_rng(1))
    night = render(layout, {"A-001"}, 23.0, np.random.default_rng(1))
    assert a.shape == (720, 1280, 3) and (a == b).all()
    assert float(np.abs(a.astype(int) - empty.astype(int)).mean()) > 0.1
    assert night.mean() < 0.5 * a.mean()


def test_rendered_camera_runs_the_detector_and_reports_accuracy(examples_dir: Path, tmp_path: Path) -> None:
    sf = parse_site_file(yaml.safe_load((examples_dir / "scenarios" / "marvdasht.yaml").read_text()))
    sc = parse_scenario({"site_file": "x.yaml", "sites": ["station-lot"], "hours": 1, "seed": 3,
                         "cameras": [{"site": "station-lot", "zone": "A", "every_s": 300}]})
    cameras = Cameras(sc.cameras, seed=3)
    engine = Engine(sc, [sf], start=START, cameras=cameras)
    camera_events = [d for s in engine.run() for v in s.events.values() for d in v
                     if d.source.value == "camera" and d.kind.value == "change"]
    acc = cameras.accuracy().summary()
    assert acc["frames"] == 13 and acc["spaces"] == 13 * 60
    assert 0.0 <= acc["accuracy"] <= 1.0
    assert camera_events and all(d.device == "cam-station-lot-A" for d in camera_events)
    assert len(engine.truth.camera_spaces) == 60
    paths = write_reports(engine, None, tmp_path, ZoneInfo("Asia/Tehran"))
    assert [p.name for p in paths] == ["marvdasht-station-lot.png"] and paths[0].stat().st_size > 10_000


def test_the_detector_is_measured_on_rendered_frames_of_a_day() -> None:
    """Re-measures the shipped detector on a few rendered frames (lot and market, day and
    night); prints the figures, and holds a loose floor so a broken detector shows."""
    detector = Detector.load()
    layout = grid_layout([f"A-{i:03d}" for i in range(1, 61)], per_row=15)
    total = Confusion()
    for hour, market in ((7.0, False), (13.0, False), (19.0, False), (13.0, True)):
        rng = np.random.default_rng(int(hour))
        occupied = {s.id for s in layout.spaces if rng.random() < 0.5}
        frame = render(layout, occupied, hour, rng, market=market)
        total = total + confusion(detector.detect(frame, layout),
                                  {s.id: s.id in occupied for s in layout.spaces})
    summary = total.summary()
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()})
    assert summary["frames"] == 4 and summary["spaces"] == 240
    assert summary["accuracy"] >= 0.6
