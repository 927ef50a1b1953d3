"""The Dingtek DO201 decoder: the vendor's example frames, its own encoder, fuzz."""

from __future__ import annotations

import contextlib
import random

import pytest

from occupancy.lorawan import FrameError
from occupancy.lorawan.dingtek import NAME
from occupancy.lorawan.frames import FrameKind, Reading
from occupancy.lorawan.models import decode, encode, model

# The vendor's telemetry example (do201-codec.yaml) as an alarm report, the same body as a heartbeat
# with the parking nibble set, and the vendor's parameter example.
ALARM = "80003102 17 06b4 00 00 0161 0010 fff6 fff0 8b 2d 0001 00 81"
HEARTBEAT_PARKED = "80003101 17 0136 10 01 0149 0010 fff6 0090 14 2d 0102 00 81"
PARAMETER = "80003103 10 01 01 18 1e 3c 003c 14 0000 81"

FRAMES = [
    (ALARM, FrameKind.STATUS, False, 3.53, -117.0,
     {"distance_mm": 1716, "level_alarm": False, "magnet_alarm": False, "battery_alarm": False,
      "magnet_x": 16, "magnet_y": -10, "magnet_z": -16, "humidity_pct": 45, "frame_counter": 1}),
    (HEARTBEAT_PARKED, FrameKind.HEARTBEAT, True, 3.29, 20.0,
     {"distance_mm": 310, "battery_alarm": True, "magnet_z": 144, "frame_counter": 258}),
    (PARAMETER, FrameKind.CONFIG, None, None, None,
     {"firmware": "1.1", "upload_interval_h": 24, "detection_interval_min": 30, "level_threshold_cm": 60,
      "magnet_threshold": 60, "battery_threshold_pct": 20}),
]


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(("hexframe", "kind", "occupied", "volts", "celsius", "fields"), FRAMES)
def test_documented_frames(hexframe: str, kind: FrameKind, occupied: bool | None, volts: float | None,
                           celsius: float | None, fields: dict[str, object]) -> None:
    frame = decode(NAME, 3, _bytes(hexframe))
    assert (frame.kind, frame.occupied, frame.battery_v, frame.temperature_c) == (kind, occupied, volts,
                                                                                  celsius)
    assert fields.items() <= dict(frame.fields).items()


@pytest.mark.parametrize(("fport", "hexframe", "message"), [
    (3, "8000", "a Dingtek frame has at least 5 bytes, got 2"),
    (3, "7f00310217", "starts with 0x80, not 0x7F"),
    (3, "8000320310010118" "1e3c003c14000081", r"device type 0x32 \(DO202\) is not a DO201"),
    (3, "8000310910", "unknown data type 0x09"),
    (3, ALARM[:20], r"status \(alarm report\) frame has at least 23 bytes, got 8"),
    (3, "80003101 17 06b4 00 00 0161 0010 fff6 fff0 8b 2d 0001 00 81 00", "has 24 bytes but declares 23"),
    (3, "80003103 11 01 01 18 1e 3c 003c 14 0000 81", "has 16 bytes but declares 17"),
    (3, "80003103 10 01 01 18 1e 3c 003c 14 0000 80", "ends with 0x81, not 0x80"),
    (2, PARAMETER, r"fPort 2 is not one of this model's ports \(3\)"),
])
def test_bad_frames_name_what_is_wrong(fport: int, hexframe: str, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode(NAME, fport, _bytes(hexframe))


@pytest.mark.parametrize("kind", [FrameKind.HEARTBEAT, FrameKind.STATUS])
@pytest.mark.parametrize("occupied", [True, False])
def test_data_round_trip(kind: FrameKind, occupied: bool) -> None:
    reading = Reading(kind=kind, occupied=occupied, battery_pct=10.0, temperature_c=-7.4, counter=70000)
    fport, payload = encode(NAME, reading)
    frame = decode(NAME, fport, payload)
    assert (fport, len(payload), payload[0], payload[-1]) == (3, 23, 0x80, 0x81)
    assert (frame.kind, frame.occupied, frame.temperature_c) == (kind, occupied, -7.0)
    assert frame.battery_v == 3.06 and frame.fields["battery_alarm"] is True
    assert frame.fields["frame_counter"] == 70000 % 65536


def test_parameter_round_trip() -> None:
    fport, payload = encode(NAME, Reading(kind=FrameKind.CONFIG))
    assert payload == _bytes(PARAMETER)
    assert decode(NAME, fport, payload).kind is FrameKind.CONFIG


def test_kinds_it_does_not_send_are_refused() -> None:
    with pytest.raises(FrameError, match="sends no startup frame"):
        encode(NAME, Reading(kind=FrameKind.STARTUP))


def test_fuzz_any_bytes_give_a_frame_or_frame_error() -> None:
    rng = random.Random(201)
    decoder = model(NAME).decode
    prefixes = [b"", b"\x80\x00\x31", *(bytes([0x80, 0, 0x31, t]) for t in (1, 2, 3))]
    for _ in range(3000):
        payload = bytearray(rng.choice(prefixes) + rng.randbytes(rng.randrange(0, 24)))
        if len(payload) > 5 and rng.random() < 0.5:  # often well framed, so the bodies get fuzzed too
            payload[4], payload[-1] = len(payload), 0x81
        with contextlib.suppress(FrameError):  # anything else (IndexError, ...) fails the test
            decoder(rng.choice([3, 3, 1, rng.randrange(256)]), bytes(payload))
