"""Cameras in a scenario: rendered frames or replayed real frames, through the real detector.

``Cameras(specs, detector, seed)`` is the engine's camera hub. On ``attach`` each
spec becomes a camera over some spaces of a simulated site:

- **rendered** (no ``replay``): a ``grid_layout`` of the zone's spaces; every
  ``every_s`` simulated seconds a frame is drawn from the *true* states
  (``render``) and scored by ``gateway.camera.CameraView`` (the detector);
  the detector's per-frame results are also scored against the truth
  (accuracy).
- **replayed** (``replay`` folder + PKLot ``layout``): the folder's frames, at
  their capture times moved onto the scenario's clock, scored the same way.
  There is no truth to score against; the states the camera's machine
  confirms *are* the truth the chain must then deliver.

Each frame is one *reading* (``CameraReading``); the engine feeds it to the
camera's own state machine (``occupancy.statemachine``, ``confirm_frames``
readings to confirm), as the gateway does with a real camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from gateway.camera import CameraView, folder_frames, timestamp_from_name
from occupancy.model import SpaceState
from occupancy.vision.detector import Detector
from occupancy.vision.evaluate import Confusion, confusion
from occupancy.vision.layout import Layout, load_layout
from occupancy.vision.loading import read_frame
from simulators import SimulationError
from simulators.engine import CameraHub, CameraReading, CameraUnit, Engine, Target
from simulators.render import grid_layout, render
from simulators.scenario import CameraSpec
from simulators.truth import SpaceKey


@dataclass
class _Camera:
    spec: CameraSpec
    target: Target
    view: CameraView
    device: str
    frames: list[tuple[float, Path]] = field(default_factory=list)  # replay: (offset s, path)
    next_s: float = 0.0
    accuracy: Confusion = field(default_factory=Confusion)

    @property
    def layout(self) -> Layout:
        return self.view.layout

    def unit(self) -> CameraUnit:
        return CameraUnit(self.device, self.target, self.view.spaces, self.spec.confirm_frames,
                          is_truth=self.spec.replay is not None)


class Cameras(CameraHub):
    """See the module docstring."""

    def __init__(self, specs: list[CameraSpec], detector: Detector | None = None, seed: int = 1) -> None:
        self.specs = specs
        self.detector = detector or Detector.load()
        self.seed = seed
        self.cameras: list[_Camera] = []
        self.watched: set[SpaceKey] = set()
        self.frames = 0

    def accuracy(self) -> Confusion:
        total = Confusion()
        for c in self.cameras:
            total = total + c.accuracy
        return total

    # ---- CameraHub ---------------------------------------------------------------

    def attach(self, engine: Engine) -> list[CameraUnit]:
        for spec in self.specs:
            target = next((t for t in engine.targets if t.site.id == spec.site), None)
            if target is None:
                raise SimulationError(f"camera of site {spec.site!r}: the site is not simulated")
            camera = self._replayed(spec, target) if spec.replay else self._rendered(spec, target)
            self.cameras.append(camera)
            keys = {(target.tenant, target.site.id, s.id) for s in camera.layout.spaces}
            self.watched |= keys
            if not spec.replay:
                engine.truth.camera_spaces |= keys
        return [c.unit() for c in self.cameras]

    def readings(self, engine: Engine, sim_t: datetime) -> list[CameraReading]:
        out = []
        offset = (sim_t - engine.start).total_seconds()
        for cam in self.cameras:
            while cam.next_s <= offset:
                out.append(self._frame(engine, cam, engine.start + timedelta(seconds=cam.next_s)))
                if not self._advance(cam):
                    break
        return out

    # ---- set-up ----------------------------------------------------------------------

    def _rendered(self, spec: CameraSpec, target: Target) -> _Camera:
        zones = [z for z in target.site.zones if spec.zone is None or z.id == spec.zone]
        if not zones:
            raise SimulationError(f"camera of {spec.site}: no zone {spec.zone!r}")
        ids = [str(s) for z in zones for s in z.space_ids() if s in set(target.spaces)]
        device = spec.device or f"cam-{spec.site}-{spec.zone or 'all'}"
        layout = grid_layout(ids, per_row=min(15, len(ids)), device=device,
                             site=spec.site)
        return _Camera(spec, target, CameraView(layout, self.detector, spec.site), device)

    def _replayed(self, spec: CameraSpec, target: Target) -> _Camera:
        assert spec.replay is not None
        assert spec.layout is not None
        layout = load_layout(spec.layout, spec.device)  # a site file names the camera
        unknown = set(layout.ids) - {str(s) for s in target.spaces}
        if unknown:
            raise SimulationError(f"camera of {spec.site}: layout spaces not bound: {sorted(unknown)[:5]}")
        paths = folder_frames(spec.replay).paths
        times = [timestamp_from_name(p) for p in paths]
        if not paths or any(t is None for t in times):
            raise SimulationError(f"{spec.replay}: frames need capture times in their names")
        first = times[0]
        assert first is not None
        frames = [((t - first).total_seconds(), p) for t, p in zip(times, paths, strict=True) if t]
        device = spec.device or f"cam-{spec.site}"
        return _Camera(spec, target, CameraView(layout, self.detector, spec.site), device, frames)

    # ---- frames ------------------------------------------------------------------------

    def _advance(self, cam: _Camera) -> bool:
        if not cam.spec.replay:
            cam.next_s += cam.spec.every_s
            return True
        later = [o for o, _ in cam.frames if o > cam.next_s]
        cam.next_s = later[0] if later else float("inf")
        return bool(later)

    def _frame(self, engine: Engine, cam: _Camera, sim_t: datetime) -> CameraReading:
        if cam.spec.replay:
            path = next(p for o, p in cam.frames if o == cam.next_s)
            frame = read_frame(path)
        else:
            frame = self._render(engine, cam, sim_t)
        results = self.detector.detect(frame, cam.layout)
        if not cam.spec.replay:
            truth = self._truth(engine, cam, sim_t)
            cam.accuracy = cam.accuracy + confusion(results, truth)
        self.frames += 1
        return CameraReading(cam.device, sim_t, cam.view.scores(results))

    def _truth(self, engine: Engine, cam: _Camera, sim_t: datetime) -> dict[str, bool]:
        site = (cam.target.tenant, cam.target.site.id)
        at = engine.stamp(sim_t)
        return {s.id: engine.truth.state_at((*site, s.id), at) is SpaceState.OCCUPIED
                for s in cam.layout.spaces}

    def _render(self, engine: Engine, cam: _Camera, sim_t: datetime) -> np.ndarray:
        truth = self._truth(engine, cam, sim_t)
        rng = np.random.default_rng([self.seed, len(self.cameras), self.frames])
        hour = sim_t.astimezone(engine.start.tzinfo).hour + sim_t.minute / 60
        return render(cam.layout, {k for k, v in truth.items() if v}, hour, rng,
                      market=cam.target.site.kind == "market")
