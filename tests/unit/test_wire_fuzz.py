"""Decode under attack: no input lets anything but ``WireError`` out of the decoders,
and the inputs that once stopped ingest are refused with a reason."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from occupancy.health import decode_health
from occupancy.wire import (
    MAX_BOOT,
    MAX_SEQ,
    MAX_TIME,
    MIN_TIME,
    Reason,
    Status,
    WireError,
    decode_events,
    decode_status,
    encode_status,
)
from tests.support.payloads import NASTY, mutate

VALID = json.dumps({"v": 1, "gateway": "gw-lot7", "boot": 12, "events": [
    {"seq": 1042, "space": "lot7/A-013", "state": "occupied", "at": "2026-11-26T10:00:00.123Z",
     "source": "camera", "confidence": 0.97, "device": "cam-2"},
    {"seq": 1043, "space": "lot7/A-014", "state": "free", "at": "2026-11-26T10:00:01Z",
     "kind": "heartbeat"}]}).encode()
VALID_STATUS = encode_status(Status(True, 12, datetime(2026, 11, 26, tzinfo=UTC)))


def _only_wire_errors(raw: bytes) -> None:
    for decode in (decode_events, decode_status, decode_health):
        try:
            decode(raw)
        except WireError as exc:
            assert isinstance(exc.reason, Reason)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_wire_errors(raw: bytes) -> None:
    _only_wire_errors(raw)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from([VALID, VALID_STATUS]), st.randoms(use_true_random=False),
       st.integers(1, 4))
def test_mutated_valid_payloads_raise_only_wire_errors(raw: bytes, rng: random.Random,
                                                       rounds: int) -> None:
    _only_wire_errors(mutate(raw, rng, rounds))


@pytest.mark.parametrize("nasty", NASTY)
@pytest.mark.parametrize("field", ["boot", "seq", "at", "confidence", "space", "v"])
def test_each_nasty_value_in_each_field_is_refused_or_decoded(field: str, nasty: str) -> None:
    doc = json.loads(VALID)
    target = doc if field in ("boot", "v") else doc["events"][0]
    target[field] = "\x01"
    _only_wire_errors(json.dumps(doc).replace('"\\u0001"', nasty).encode())


def _refusal(raw: bytes, decode=decode_events) -> Reason:  # type: ignore[no-untyped-def]
    with pytest.raises(WireError) as info:
        decode(raw)
    return info.value.reason


def _with_event(**field: str) -> bytes:
    doc = json.loads(VALID)
    doc["events"][0].update({k: "\x01" for k in field})
    text = json.dumps(doc)
    for raw in field.values():
        text = text.replace('"\\u0001"', raw, 1)
    return text.encode()


def test_huge_integer_is_refused_out_of_range_not_a_value_error() -> None:
    assert _refusal(_with_event(seq="9" * 4301)) is Reason.OUT_OF_RANGE
    assert _refusal(b'{"v":1,"x":' + b"1" * 100_000 + b"}") is Reason.OUT_OF_RANGE


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused(raw: str) -> None:
    assert _refusal(_with_event(confidence=raw)) is Reason.OUT_OF_RANGE


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
                                "1999-12-31T23:59:59Z", "2200-01-01T00:00:00Z"])
def test_year_one_and_year_9999_times_are_refused_in_events_and_status(at: str) -> None:
    assert _refusal(_with_event(at=json.dumps(at))) is Reason.OUT_OF_RANGE
    status = json.dumps({"v": 1, "online": True, "boot": 1, "at": at}).encode()
    assert _refusal(status, decode_status) is Reason.OUT_OF_RANGE


def test_time_bounds_are_exact_in_utc() -> None:
    assert decode_events(_with_event(at='"2000-01-01T03:30:00+03:30"')).events[0].at == MIN_TIME
    assert _refusal(_with_event(at='"2000-01-01T03:29:59+03:30"')) is Reason.OUT_OF_RANGE
    assert _refusal(_with_event(at='"2199-12-31T20:00:00-04:00"')) is Reason.OUT_OF_RANGE
    assert MAX_TIME.year == 2200


def test_boot_and_seq_bounds() -> None:
    assert decode_status(json.dumps({"v": 1, "online": False, "boot": MAX_BOOT}).encode()).boot == MAX_BOOT
    for boot in (MAX_BOOT + 1, 2**63 - 1):
        raw = json.dumps({"v": 1, "online": False, "boot": boot}).encode()
        assert _refusal(raw, decode_status) is Reason.OUT_OF_RANGE
    assert decode_events(_with_event(seq=str(MAX_SEQ))).events[0].seq == MAX_SEQ
    assert _refusal(_with_event(seq=str(MAX_SEQ + 1))) is Reason.OUT_OF_RANGE
    doc = json.loads(VALID)
    doc["boot"] = MAX_BOOT + 1
    assert _refusal(json.dumps(doc).encode()) is Reason.OUT_OF_RANGE


def test_deep_nesting_is_malformed_not_a_recursion_error() -> None:
    assert _refusal(b"[" * 100_000 + b"]" * 100_000) is Reason.MALFORMED_JSON
