"""The Tekzitel TEKZIPARK decoder: frames per the vendor's TTN codec, its own encoder, fuzz."""

from __future__ import annotations

import contextlib
import random

import pytest

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import FrameKind, Reading
from occupancy.lorawan.models import decode, encode, model
from occupancy.lorawan.tekzitel import NAME

# (fPort, hex, kind, occupied, temperature, fields that must be present)
FRAMES = [
    (1, "a01507", FrameKind.STATUS, True, 21.0,
     {"battery_good": True, "keep_alive": False, "reset": False, "parking_id": 7}),
    (1, "21fb07", FrameKind.HEARTBEAT, False, -5.0, {"keep_alive": True, "battery_good": True}),
    (1, "0a1407", FrameKind.STARTUP, False, 20.0,
     {"reset": True, "radar": True, "battery_good": False}),
    (1, "b41502", FrameKind.STATUS, True, 21.0, {"obstruction": True, "no_beacon": True, "parking_id": 2}),
    (1, "a01507c4a1b2000f", FrameKind.STATUS, True, 21.0,
     {"beacon_rssi_dbm": -60, "beacons": [0xA1B2, 0x000F]}),
    (1, "a01507c4", FrameKind.STATUS, True, 21.0, {"beacon_rssi_dbm": -60, "beacons": []}),
    (2, "a1fe07281050050afb033c0a", FrameKind.OTHER, True, -2.0,
     {"keep_alive": True, "deflection_x": 40, "deflection_z": 80, "baseline_z": -5, "fault_code": 3,
      "obstruction_level": 60, "radar_reflection": 10}),
]


@pytest.mark.parametrize(("fport", "hexframe", "kind", "occupied", "celsius", "fields"), FRAMES)
def test_frames(fport: int, hexframe: str, kind: FrameKind, occupied: bool, celsius: float,
                fields: dict[str, object]) -> None:
    frame = decode(NAME, fport, bytes.fromhex(hexframe))
    assert (frame.kind, frame.occupied, frame.temperature_c) == (kind, occupied, celsius)
    assert fields.items() <= dict(frame.fields).items()
    assert frame.battery_v is None and frame.battery_pct is None


@pytest.mark.parametrize(("fport", "hexframe", "message"), [
    (1, "a015", "a status frame has at least 3 bytes, got 2"),
    (1, "", "a status frame has at least 3 bytes, got 0"),
    (2, "a01507281050", "a debug frame has at least 12 bytes, got 6"),
    (1, "a01507c4a1b2ff", "the beacon list has 3 bytes"),
    (3, "a01507", r"fPort 3 is not one of this model's ports \(1, 2\)"),
])
def test_bad_frames_name_what_is_wrong(fport: int, hexframe: str, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode(NAME, fport, bytes.fromhex(hexframe))


@pytest.mark.parametrize("kind", [FrameKind.STATUS, FrameKind.HEARTBEAT, FrameKind.STARTUP, FrameKind.OTHER])
@pytest.mark.parametrize("occupied", [True, False])
@pytest.mark.parametrize("pct", [None, 5.0, 80.0])
def test_round_trip(kind: FrameKind, occupied: bool, pct: float | None) -> None:
    fport, payload = encode(NAME, Reading(kind=kind, occupied=occupied, battery_pct=pct, temperature_c=-3.2))
    frame = decode(NAME, fport, payload)
    assert (frame.kind, frame.occupied, frame.temperature_c) == (kind, occupied, -3.0)
    assert frame.fields["battery_good"] is (pct is None or pct >= 20)
    assert fport == (2 if kind is FrameKind.OTHER else 1)


def test_kinds_it_does_not_send_are_refused() -> None:
    with pytest.raises(FrameError, match="sends no config frame"):
        encode(NAME, Reading(kind=FrameKind.CONFIG))


def test_fuzz_any_bytes_give_a_frame_or_frame_error() -> None:
    rng = random.Random(1002)
    decoder = model(NAME).decode
    for _ in range(3000):
        payload = rng.randbytes(rng.randrange(0, 20))
        with contextlib.suppress(FrameError):  # anything else (IndexError, ...) fails the test
            decoder(rng.choice([1, 2, 3, rng.randrange(256)]), payload)
