"""The Netvox R719A decoder: the manual's frames, its own encoder, the shared ChirpStack fixtures, fuzz."""

from __future__ import annotations

import base64
import contextlib
import json
import random
from pathlib import Path

import pytest

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import FrameKind, Reading
from occupancy.lorawan.models import decode, encode, model
from occupancy.lorawan.netvox import NAME

# (fPort, hex, kind, occupied, battery_v, fields that must be present)
FRAMES = [
    (6, "0159012401000000000000", FrameKind.STATUS, True, 3.6, {"battery_low": False}),
    (6, "0159012400000000000000", FrameKind.STATUS, False, 3.6, {"battery_low": False}),
    (6, "015901a100000000000000", FrameKind.STATUS, False, 3.3, {"battery_low": True}),
    (6, "0159000a0120170503", FrameKind.STARTUP, None, None,
     {"software_version": 1.0, "hardware_version": 1, "date_code": "20170503"}),
    (7, "8159000000000000000000", FrameKind.CONFIG, None, None,
     {"command": "config_report_rsp", "success": True}),
    (7, "8159010000000000000000", FrameKind.CONFIG, None, None,
     {"command": "config_report_rsp", "success": False, "status_code": 1}),
    (7, "8259003c0e100200000000", FrameKind.CONFIG, None, None,
     {"command": "read_config_report_rsp", "min_time_s": 60, "max_time_s": 3600, "battery_change_v": 0.2}),
]


@pytest.mark.parametrize(("fport", "hexframe", "kind", "occupied", "volts", "fields"), FRAMES)
def test_documented_frames(fport: int, hexframe: str, kind: FrameKind, occupied: bool | None,
                           volts: float | None, fields: dict[str, object]) -> None:
    frame = decode(NAME, fport, bytes.fromhex(hexframe))
    assert (frame.kind, frame.occupied, frame.battery_v) == (kind, occupied, volts)
    assert fields.items() <= dict(frame.fields).items()
    assert frame.battery_pct is None and frame.temperature_c is None


@pytest.mark.parametrize(("fport", "hexframe", "message"), [
    (6, "01", "at least 2 bytes, got 1"),
    (6, "0159", "at least 3 bytes, got 2"),
    (6, "01590124", "status report frame has at least 5 bytes, got 4"),
    (6, "01590024", "version report frame has at least 9 bytes, got 4"),
    (6, "01AF012401000000000000", "device type 0xAF (R719B) is not an R719A"),
    (6, "0105012401000000000000", "device type 0x05"),
    (7, "81AF000000000000000000", "device type 0xAF"),
    (6, "0159052401000000000000", "unknown report type 0x05"),
    (6, "0159012402000000000000", "CarOnOff 0x02"),
    (7, "0159003c003c0100000000", "unknown command 0x01"),
    (7, "825900", "ReadConfigReportRsp frame has at least 7 bytes, got 3"),
    (1, "0159012401000000000000", "fPort 1 is not one of this model's ports (6, 7)"),
])
def test_bad_frames_name_what_is_wrong(fport: int, hexframe: str, message: str) -> None:
    with pytest.raises(FrameError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(NAME, fport, bytes.fromhex(hexframe))


@pytest.mark.parametrize("occupied", [True, False])
@pytest.mark.parametrize("pct", [None, 0.0, 15.0, 50.0, 100.0])
def test_status_round_trip(occupied: bool, pct: float | None) -> None:
    for kind in (FrameKind.STATUS, FrameKind.HEARTBEAT):
        fport, payload = encode(NAME, Reading(kind=kind, occupied=occupied, battery_pct=pct))
        assert (fport, len(payload)) == (6, 11)
        frame = decode(NAME, fport, payload)
        assert (frame.kind, frame.occupied) == (FrameKind.STATUS, occupied)
        assert frame.battery_v is not None and 3.0 <= frame.battery_v <= 3.6
        assert frame.fields["battery_low"] is (pct is not None and pct < 20)


@pytest.mark.parametrize(("kind", "fport"), [(FrameKind.STARTUP, 6), (FrameKind.CONFIG, 7)])
def test_other_kinds_round_trip(kind: FrameKind, fport: int) -> None:
    port, payload = encode(NAME, Reading(kind=kind))
    frame = decode(NAME, port, payload)
    assert (port, frame.kind, frame.occupied, len(payload)) == (fport, kind, None, 11)


def test_kinds_it_does_not_send_are_refused() -> None:
    with pytest.raises(FrameError, match="sends no error frame"):
        encode(NAME, Reading(kind=FrameKind.ERROR))


def test_shared_chirpstack_fixtures(shared_dir: Path) -> None:
    folder = shared_dir / "datasets" / "lorawan-chirpstack" / "netvox-r719a"
    payloads = sorted(folder.glob("payload*.json"))
    assert payloads, f"no payload*.json in {folder}"
    for path in payloads:
        event = json.loads(path.read_text())
        result = json.loads((folder / path.name.replace("payload", "result")).read_text())
        values = result["telemetry"][0]["values"]
        frame = decode(NAME, event["fPort"], base64.b64decode(event["data"]))
        if "occupied" in values:  # the converter writes CarOnOff as "on"/"off"
            assert frame.occupied is (values["occupied"] == "on"), path.name
            assert frame.battery_v == values["battery_voltage"], path.name
        else:
            assert frame.occupied is None and frame.kind is FrameKind.CONFIG, path.name
            assert (frame.fields["min_time_s"], frame.fields["max_time_s"]) == (values["minTime"],
                                                                                values["maxTime"])


def test_fuzz_any_bytes_give_a_frame_or_frame_error() -> None:
    rng = random.Random(719)
    m = model(NAME)
    prefixes = [b"", b"\x01\x59", b"\x01\x59\x00", b"\x01\x59\x01", b"\x81\x59", b"\x82\x59"]
    for _ in range(3000):
        payload = rng.choice(prefixes) + rng.randbytes(rng.randrange(0, 14))
        fport = rng.choice([0, 1, 6, 7, 224, rng.randrange(256)])
        with contextlib.suppress(FrameError):  # anything else (IndexError, ...) fails the test
            m.decode(fport, payload)  # the module itself, not only behind the port check
