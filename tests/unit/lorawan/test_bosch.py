"""The Bosch Parking Lot Sensor decoder: the vendor's examples, every port, its inverse."""

from __future__ import annotations

from pathlib import Path

import pytest

from occupancy.lorawan import FrameError
from occupancy.lorawan.bosch import ENCODABLE, NAME, RESET_CAUSES, decode, encode
from occupancy.lorawan.frames import FrameKind, Reading
from occupancy.lorawan.models import model
from tests.unit.lorawan.support import chirpstack_fixtures, fuzz

# (fport, hex, kind, occupied, temperature_c, fields expected to be a subset of frame.fields)
TABLE = [
    # Bosch codec examples (tpl110-0292)
    (1, "01", FrameKind.STATUS, True, None, {}),
    (2, "01ff", FrameKind.HEARTBEAT, True, -1.0, {}),
    (3, "24030000" "75030000" "00000000" "001d02" "03" "01", FrameKind.STARTUP, True, None,
     {"debug_codes": [804, 885], "firmware_version": "0.29.2", "reset_cause": "system_request"}),
    # firmware 0.23: a heartbeat without the temperature byte
    (1, "00", FrameKind.STATUS, False, None, {}),
    (2, "00", FrameKind.HEARTBEAT, False, None, {}),
    (2, "0119", FrameKind.HEARTBEAT, True, 25.0, {}),
    # occupancy is bit 0 only; the other bits are reserved
    (1, "fe", FrameKind.STATUS, False, None, {}),
    (3, "00" * 12 + "001d02" + "01" + "00", FrameKind.STARTUP, False, None,
     {"debug_codes": [], "reset_cause": "watchdog", "reset_cause_code": 1}),
    (3, "00" * 12 + "001d02" + "09" + "01", FrameKind.STARTUP, True, None,
     {"reset_cause": "unknown", "reset_cause_code": 9}),
    (4, "001d02", FrameKind.CONFIG, None, None, {"firmware_version": "0.29.2"}),
    (4, "0a0b0c0d", FrameKind.CONFIG, None, None, {"info_hex": "0a0b0c0d"}),
    (5, "000000002a", FrameKind.OTHER, None, None,
     {"usage_type": "parking_status_changes", "value_hex": "0000002a"}),
    (5, "63", FrameKind.OTHER, None, None, {"usage_type": "unknown", "usage_type_code": 99}),
    (6, "10203040" "d9020000" "0700", FrameKind.ERROR, None, None,
     {"device_time_s": 0x40302010, "debug_code": 729, "sequence_number": 7}),
    (7, "c4", FrameKind.OTHER, None, -60.0, {"alert": "temperature"}),
]


@pytest.mark.parametrize(("fport", "hexs", "kind", "occupied", "temp", "fields"), TABLE)
def test_decode_table(fport: int, hexs: str, kind: FrameKind, occupied: bool | None,
                      temp: float | None, fields: dict[str, object]) -> None:
    frame = model(NAME).decode_frame(fport, bytes.fromhex(hexs))
    assert (frame.kind, frame.occupied, frame.temperature_c) == (kind, occupied, temp)
    assert frame.model == NAME and frame.fport == fport
    assert {k: frame.fields[k] for k in fields} == fields


def test_firmware_version_is_read_in_byte_order() -> None:
    """0x00 0x1d 0x02 is 0.29.2 (some converters print it reversed as 2.29.0)."""
    frame = decode(3, bytes.fromhex("00000000990200d100050000001d020200"))
    assert frame.fields["firmware_version"] == "0.29.2"
    assert frame.fields["reset_cause"] == RESET_CAUSES[2] == "power_on"


@pytest.mark.parametrize(("fport", "size", "what"),
                         [(1, 1, "parking status"), (2, 1, "heartbeat"), (3, 17, "start-up"),
                          (4, 1, "device information"), (5, 1, "device usage"), (6, 10, "debug"),
                          (7, 1, "temperature alert")])
def test_short_frames_name_the_length(fport: int, size: int, what: str) -> None:
    with pytest.raises(FrameError, match=f"{what} frame has at least {size} bytes, got {size - 1}"):
        decode(fport, bytes(size - 1))


def test_trailing_bytes_are_tolerated() -> None:
    assert decode(1, bytes.fromhex("01ffff")).occupied is True
    assert decode(3, bytes(16) + b"\x01\xaa").occupied is True


@pytest.mark.parametrize("fport", [0, 8, 51, 223, 255])
def test_other_ports_are_refused(fport: int) -> None:
    with pytest.raises(FrameError, match=f"fPort {fport}"):
        model(NAME).decode_frame(fport, b"\x01")
    with pytest.raises(FrameError, match=f"fPort {fport}"):
        decode(fport, b"\x01")


@pytest.mark.parametrize("kind", sorted(ENCODABLE[NAME]))
@pytest.mark.parametrize("occupied", [False, True])
def test_encode_decode_round_trip(kind: FrameKind, occupied: bool) -> None:
    reading = Reading(kind=kind, occupied=occupied, temperature_c=-7.4, counter=513)
    fport, payload = encode(reading)
    frame = model(NAME).decode_frame(fport, payload)
    assert frame.kind is kind
    if kind in (FrameKind.STATUS, FrameKind.HEARTBEAT, FrameKind.STARTUP):
        assert frame.occupied is occupied
    else:
        assert frame.occupied is None
    if kind is FrameKind.HEARTBEAT:
        assert frame.temperature_c == -7.0
    if kind is FrameKind.ERROR:
        assert frame.fields["sequence_number"] == 513


def test_heartbeat_without_temperature_is_one_byte() -> None:
    assert encode(Reading(kind=FrameKind.HEARTBEAT, occupied=True)) == (2, b"\x01")
    assert encode(Reading(kind=FrameKind.HEARTBEAT, temperature_c=500.0))[1] == b"\x00\x7f"
    with pytest.raises(FrameError, match="temperature"):
        encode(Reading(kind=FrameKind.HEARTBEAT, temperature_c=float("nan")))


def test_fuzz_any_bytes_give_a_frame_or_frame_error() -> None:
    assert fuzz(model(NAME), [0, 9, 200], seed=20240515, rounds=3000, longest=24) > 1000


def test_shared_fixtures_decode_to_their_occupancy(shared_dir: Path) -> None:
    for name, fport, payload, occupied in chirpstack_fixtures(shared_dir, "bosch-parking_lot_sensor"):
        assert model(NAME).decode_frame(fport, payload).occupied is occupied, name
