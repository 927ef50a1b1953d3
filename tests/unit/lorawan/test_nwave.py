"""The Nwave NPS405 (G4) and NPS310 decoders: the vendor's examples, every port, the inverse."""

from __future__ import annotations

from pathlib import Path

import pytest

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import FrameKind, Reading
from occupancy.lorawan.models import model
from occupancy.lorawan.nwave import ENCODABLE, NPS310, NPS405, battery_health, previous_state
from tests.unit.lorawan.support import chirpstack_fixtures, fuzz

# (model, fport, hex, kind, occupied, fields expected to be a subset of frame.fields)
TABLE = [
    # Nwave codec examples (nps405, nps310sm)
    (NPS405, 1, "95", FrameKind.STATUS, True,
     {"previous_state_min": 74, "previous_state_error_min": 0, "previous_state_overflow": False}),
    (NPS405, 3, "0204090200", FrameKind.STARTUP, False,
     {"firmware_version": "2.4.9", "reset_cause": "power_on"}),
    (NPS405, 10, "d1201f345678", FrameKind.OTHER, True,
     {"tag_id": "1F345678", "tag_battery_v": 3.2, "previous_state_min": 160, "previous_state_error_min": 4}),
    (NPS310, 1, "01", FrameKind.STATUS, True, {}),
    (NPS310, 2, "00", FrameKind.HEARTBEAT, False, {}),
    (NPS310, 3, "010d000200", FrameKind.STARTUP, False,
     {"firmware_version": "1.13.0", "reset_cause": "power_on"}),
    # Nwave's own example of a tag registration without the battery byte
    (NPS405, 10, "e91f345678", FrameKind.OTHER, True, {"tag_id": "1F345678", "tag_battery_v": None}),
    # bit 0 clear: a registration that says nothing of occupancy
    (NPS405, 10, "00001f3456", FrameKind.OTHER, None, {"tag_id": "001F3456"}),
    (NPS405, 1, "00", FrameKind.STATUS, False, {"previous_state_min": 0}),
    (NPS405, 1, "b5", FrameKind.STATUS, True, {"previous_state_min": 90, "previous_state_error_min": 4}),
    (NPS405, 1, "f1", FrameKind.STATUS, True, {"previous_state_min": 240, "previous_state_error_min": 59}),
    (NPS405, 1, "fd", FrameKind.STATUS, True, {"previous_state_min": 600}),
    (NPS405, 1, "fe", FrameKind.STATUS, False,
     {"previous_state_min": 660, "previous_state_error_min": None, "previous_state_overflow": True}),
    (NPS405, 2, "05ffff", FrameKind.HEARTBEAT, True, {"hw_health_status": 2, "battery_health": "normal"}),
    (NPS405, 3, "0204090001", FrameKind.STARTUP, True, {"reset_cause": "rejoining_lorawan_network"}),
    (NPS405, 3, "0204090401", FrameKind.STARTUP, True, {"reset_cause": "unknown", "reset_cause_code": 4}),
    (NPS310, 3, "010d000401", FrameKind.STARTUP, True, {"reset_cause": "brownout"}),
    (NPS405, 6, "", FrameKind.OTHER, None, {"debug_hex": ""}),
    (NPS310, 6, "dead", FrameKind.OTHER, None, {"debug_hex": "dead"}),
]


@pytest.mark.parametrize(("name", "fport", "hexs", "kind", "occupied", "fields"), TABLE)
def test_decode_table(name: str, fport: int, hexs: str, kind: FrameKind, occupied: bool | None,
                      fields: dict[str, object]) -> None:
    frame = model(name).decode_frame(fport, bytes.fromhex(hexs))
    assert (frame.model, frame.fport, frame.kind, frame.occupied) == (name, fport, kind, occupied)
    assert {k: frame.fields[k] for k in fields} == fields


def test_g4_heartbeat_uses_nwaves_battery_and_temperature_formulas() -> None:
    """Nwave's example: 0xd3 is 2500 + 4·211 = 3344 mV, 0xd8 (-40) is -40/2 + 10 = -10 °C."""
    frame = model(NPS405).decode_frame(2, bytes.fromhex("00d3d800590b"))
    assert (frame.kind, frame.occupied) == (FrameKind.HEARTBEAT, False)
    assert (frame.battery_v, frame.temperature_c, frame.battery_pct) == (3.344, -10.0, None)
    assert frame.fields == {"hw_health_status": 0, "battery_health": "normal"}


@pytest.mark.parametrize(("mv", "celsius", "health"),
                         [(3000, 20, "normal"), (2999, 20, "low"), (2900, 20, "low"), (2899, 20, "critical"),
                          (2900, -5, "low"), (2900, -5.5, "normal"), (2899, -10, "low"),
                          (2799, -10, "critical")])
def test_battery_health_thresholds(mv: int, celsius: float, health: str) -> None:
    assert battery_health(mv, celsius) == health


def test_previous_state_bands() -> None:
    assert [previous_state(c)["previous_state_min"] for c in (0, 89, 90, 119, 120, 126, 127)] == \
        [0, 89, 90, 235, 240, 600, 660]


@pytest.mark.parametrize(("name", "fport", "size", "what"),
                         [(NPS405, 1, 1, "parking status"), (NPS405, 2, 3, "heartbeat"),
                          (NPS405, 3, 5, "startup"), (NPS405, 10, 5, "SDI tag registration"),
                          (NPS310, 1, 1, "parking status"), (NPS310, 2, 1, "heartbeat"),
                          (NPS310, 3, 5, "startup")])
def test_short_frames_name_the_length(name: str, fport: int, size: int, what: str) -> None:
    with pytest.raises(FrameError, match=f"{name}: fPort {fport}: a {what} frame has at least {size} "
                                         f"bytes, got {size - 1}"):
        model(name).decode_frame(fport, bytes(size - 1))


def test_trailing_bytes_are_tolerated() -> None:
    assert model(NPS405).decode_frame(1, b"\x01\x00\x00").occupied is True
    assert model(NPS310).decode_frame(2, b"\x01\x7f").occupied is True
    assert model(NPS405).decode_frame(3, bytes.fromhex("020409020100")).occupied is True


@pytest.mark.parametrize(("name", "fport"), [(NPS405, 4), (NPS405, 0), (NPS310, 10), (NPS310, 255)])
def test_other_ports_are_refused(name: str, fport: int) -> None:
    with pytest.raises(FrameError, match=f"fPort {fport}"):
        model(name).decode_frame(fport, b"\x01\x02\x03\x04\x05\x06")
    with pytest.raises(FrameError, match=f"fPort {fport}"):
        model(name).decode(fport, b"\x01\x02\x03\x04\x05\x06")


CASES = [(name, kind) for name in (NPS405, NPS310) for kind in sorted(ENCODABLE[name])]


@pytest.mark.parametrize(("name", "kind"), CASES)
@pytest.mark.parametrize("occupied", [False, True])
def test_encode_decode_round_trip(name: str, kind: FrameKind, occupied: bool) -> None:
    reading = Reading(kind=kind, occupied=occupied, battery_pct=50.0, temperature_c=-3.0, counter=0x1F345678)
    fport, payload = model(name).encode(reading)
    frame = model(name).decode_frame(fport, payload)
    assert frame.kind is kind
    if kind is FrameKind.OTHER:  # a tag registration states occupancy only when occupied
        assert frame.occupied is (True if occupied else None)
        assert frame.fields["tag_id"] == "1F345678"
    else:
        assert frame.occupied is occupied
    if name == NPS405 and kind is FrameKind.HEARTBEAT:
        assert frame.temperature_c == -3.0
        assert frame.battery_v == pytest.approx(3.2, abs=0.004)


@pytest.mark.parametrize("name", [NPS405, NPS310])
def test_frames_the_sensor_never_sends_are_refused(name: str) -> None:
    for kind in set(FrameKind) - ENCODABLE[name]:
        with pytest.raises(FrameError, match=f"sends no {kind.value} frame"):
            model(name).encode(Reading(kind=kind))


def test_fuzz_any_bytes_give_a_frame_or_frame_error() -> None:
    for seed, name in enumerate((NPS405, NPS310)):
        assert fuzz(model(name), [0, 4, 11, 224], seed=405310 + seed, rounds=2000, longest=12) > 500


@pytest.mark.parametrize("folder", ["nwave-g4_nps_sm", "nwave-g4_nps_fm"])
def test_shared_fixtures_decode_to_their_occupancy(shared_dir: Path, folder: str) -> None:
    for name, fport, payload, occupied in chirpstack_fixtures(shared_dir, folder):
        assert model(NPS405).decode_frame(fport, payload).occupied is occupied, name
