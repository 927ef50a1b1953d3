"""One state machine for every device: sensors and cameras through ``gateway.devices``.

A camera's adapter returns one frame's detector scores; the gateway's machine for
the camera debounces them (three frames by default), exactly as it debounces a
bay sensor's 0/1 readings.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from gateway.adapters.camera import CameraAdapter
from gateway.camera import CameraView, MemoryFrames
from gateway.config import parse_gateway_config
from gateway.devices import CAMERA_CONFIRM_READINGS, DeviceMachines
from occupancy.ids import DeviceId, SpaceRef
from occupancy.model import EventKind, Source, SpaceState
from occupancy.statemachine import Policy
from occupancy.vision.detector import Detector
from occupancy.vision.layout import Layout, Space

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
A, B = SpaceRef.parse("lot/A-1"), SpaceRef.parse("lot/A-2")


def t(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def camera_machines(confirm: int = CAMERA_CONFIRM_READINGS) -> DeviceMachines:
    machines = DeviceMachines()
    machines.add("cam-1", [A, B], Policy(confirm_readings=confirm, heartbeat_s=60, stale_after_s=30),
                 Source.CAMERA, device=DeviceId("cam-1"), start=T0)
    return machines


def test_camera_frames_are_debounced_and_carry_the_confirming_frame() -> None:
    machines = camera_machines()
    first = machines.observe("cam-1", t(0), {A: 0.1, B: 0.9})
    assert [(str(d.space), d.state, d.at, d.confidence) for d in first] == [
        ("lot/A-1", SpaceState.FREE, t(0), 0.9), ("lot/A-2", SpaceState.OCCUPIED, t(0), 0.9)]
    assert all(d.device == "cam-1" and d.source is Source.CAMERA for d in first)
    assert machines.observe("cam-1", t(5), {A: 0.95}) == []  # someone walks through
    assert machines.observe("cam-1", t(10), {A: 0.1}) == []
    changes = [machines.observe("cam-1", t(15 + 5 * i), {A: 0.8}) for i in range(3)]
    assert changes[:2] == [[], []]
    (arrived,) = changes[2]
    assert (arrived.state, arrived.at, arrived.confidence) == (SpaceState.OCCUPIED, t(25), 0.8)


def test_ticks_restate_every_device_and_expire_silent_spaces() -> None:
    machines = camera_machines()
    sensors = [SpaceRef.parse("lot/B-1")]
    machines.add("bus", sensors, Policy(heartbeat_s=60, stale_after_s=30), Source.SENSOR,
                 device=DeviceId("bus"), start=T0)
    machines.observe("cam-1", t(0), {A: 0.1, B: 0.9})
    machines.observe("bus", t(0), {sensors[0]: 1.0})
    assert machines.tick(t(10)) == []
    expired = machines.tick_each(t(30))
    assert {k: [(str(d.space), d.state) for d in v] for k, v in expired.items()} == {
        "cam-1": [("lot/A-1", SpaceState.UNKNOWN), ("lot/A-2", SpaceState.UNKNOWN)],
        "bus": [("lot/B-1", SpaceState.UNKNOWN)]}
    beats = machines.tick(t(60))
    assert {(str(d.space), d.kind) for d in beats} == {
        ("lot/A-1", EventKind.HEARTBEAT), ("lot/A-2", EventKind.HEARTBEAT), ("lot/B-1", EventKind.HEARTBEAT)}


def test_retune_changes_the_periods_of_every_machine() -> None:
    machines = camera_machines()
    machines.observe("cam-1", t(0), {A: 0.1, B: 0.9})
    machines.retune(heartbeat_s=10, stale_after_s=None)
    assert machines.machine("cam-1").policy.heartbeat_s == 10
    assert machines.machine("cam-1").policy.stale_after_s == 30
    assert len(machines.tick(t(10))) == 2


def _camera_config(tmp_path: Path, **device: Any) -> dict[str, Any]:
    boxes = [{"points": [[x, 0], [x + 10, 0], [x + 10, 10], [x, 10]]} for x in (0, 20)]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    return {"tenant": "t1", "gateway": "gw1", "broker": {"url": "mqtt://127.0.0.1:1883"},
            "debounce": {"confirm_readings": 1},
            "devices": [{"id": "cam-1", "kind": "camera", "source": "frames", "layout": "boxes.json",
                         "site": "lot", **device}]}


def test_a_camera_confirms_over_three_frames_unless_its_debounce_says_otherwise(tmp_path: Path) -> None:
    config = parse_gateway_config(_camera_config(tmp_path), tmp_path)
    policy = config.policy(config.devices[0])
    assert (policy.confirm_readings, policy.debounce_s) == (3, 0.0)  # not the sensors' 1
    config = parse_gateway_config(_camera_config(tmp_path, debounce={"confirm_readings": 5,
                                                                     "debounce_s": 20}), tmp_path)
    policy = config.policy(config.devices[0])
    assert (policy.confirm_readings, policy.debounce_s) == (5, 20.0)


def test_the_camera_adapter_returns_one_frames_scores() -> None:
    layout = Layout((Space("A-1", ((0.0, 0.0), (60.0, 0.0), (60.0, 40.0), (0.0, 40.0))),
                     Space("off", ((500.0, 500.0), (560.0, 500.0), (560.0, 540.0), (500.0, 540.0)))))
    frames = [(t(i), np.full((80, 120, 3), 90, dtype=np.uint8)) for i in range(2)]
    adapter = CameraAdapter(MemoryFrames(frames), CameraView(layout, Detector.load(), "lot"), "cam-1")
    assert adapter.spaces == (A, SpaceRef.parse("lot/off"))
    reading = asyncio.run(adapter.read())
    assert list(reading) == [A]  # the polygon off the frame gives no reading
    assert 0.0 <= reading[A] <= 1.0
