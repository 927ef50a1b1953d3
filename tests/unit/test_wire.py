"""The wire format: round trips (property-based) and strict rejections."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from occupancy.ids import DeviceId, GatewayId, IdError, SiteId, SpaceId, SpaceRef, TenantId
from occupancy.model import EventKind, OccupancyEvent, Source, SpaceState
from occupancy.topics import Channel, Topic, TopicError, subscription, topic
from occupancy.wire import (
    MAX_BOOT,
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    EventBatch,
    Reason,
    Status,
    WireError,
    decode_events,
    decode_status,
    encode_events,
    encode_status,
)


def _to_millis(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


gateway_ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
site_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
space_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.just(UTC)).map(_to_millis)
events = st.builds(
    OccupancyEvent,
    seq=st.integers(1, MAX_SEQ),
    space=st.builds(SpaceRef, site_ids.map(SiteId), space_ids.map(SpaceId)),
    state=st.sampled_from(SpaceState),
    at=times,
    source=st.sampled_from(Source),
    confidence=st.none() | st.floats(0, 1).map(lambda x: round(x, 4)),
    device=st.none() | space_ids.map(DeviceId),
    kind=st.sampled_from(EventKind),
)


def _unique_seqs(evs: list[OccupancyEvent]) -> tuple[OccupancyEvent, ...]:
    seen: dict[int, OccupancyEvent] = {}
    for e in evs:
        seen.setdefault(e.seq, e)
    return tuple(seen.values())


@given(gateway_ids, st.integers(0, MAX_BOOT), st.lists(events, min_size=1, max_size=20))
def test_decode_inverts_encode(gw: str, boot: int, evs: list[OccupancyEvent]) -> None:
    batch = EventBatch(GatewayId(gw), boot, _unique_seqs(evs))
    raw = encode_events(batch)
    assert decode_events(raw, expect_gateway=gw) == batch
    assert encode_events(decode_events(raw)) == raw  # canonical: same bytes again


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_garbage_bytes_are_rejected_with_a_reason(raw: bytes) -> None:
    try:
        decode_events(raw)
    except WireError as exc:
        assert isinstance(exc.reason, Reason)
    else:  # pragma: no cover - random bytes that are a valid batch would be a miracle
        pytest.fail("garbage decoded")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(["v", "gateway", "boot", "events", "x"]), json_values))
def test_wrong_shapes_are_rejected_never_crash(obj: dict[str, object]) -> None:
    with pytest.raises(WireError):
        decode_events(json.dumps(obj).encode())


def _payload(**over: object) -> bytes:
    event = {"seq": 1, "space": "lot7/A-013", "state": "occupied", "at": "2026-11-26T10:00:00.123Z",
             "source": "camera", "confidence": 0.97, "device": "cam-2"}
    event.update(over.pop("event", {}))  # type: ignore[arg-type]
    body = {"v": 1, "gateway": "gw-lot7", "boot": 12, "events": [event], **over}
    return json.dumps(body).encode()


def test_the_design_example_decodes() -> None:
    batch = decode_events(_payload())
    e = batch.events[0]
    assert (batch.gateway, batch.boot) == ("gw-lot7", 12)
    assert (e.seq, str(e.space), e.state, e.source, e.confidence, e.device) == (
        1, "lot7/A-013", SpaceState.OCCUPIED, Source.CAMERA, 0.97, "cam-2")
    assert e.at == datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{nope", Reason.MALFORMED_JSON),
    (b"\xff\xfe", Reason.MALFORMED_JSON),
    (_payload().decode().encode("utf-16"), Reason.MALFORMED_JSON),
    (_payload().decode().encode("utf-16-le"), Reason.MALFORMED_JSON),
    (_payload().decode().encode("utf-32"), Reason.MALFORMED_JSON),
    (_payload().replace(b"gw-lot7", b"gw-\xed\xa0\x80"), Reason.MALFORMED_JSON),  # a surrogate
    (b"[1, 2]", Reason.NOT_AN_OBJECT),
    (_payload(v=2), Reason.UNSUPPORTED_VERSION),
    (_payload(v=True), Reason.UNSUPPORTED_VERSION),
    (_payload(extra=1), Reason.UNKNOWN_FIELD),
    (_payload(events=[]), Reason.EMPTY_BATCH),
    (_payload(boot=-1), Reason.BAD_FIELD),
    (_payload(boot="1"), Reason.BAD_FIELD),
    (_payload(gateway="bad gateway"), Reason.BAD_FIELD),
    (_payload(event={"state": "parked"}), Reason.BAD_FIELD),
    (_payload(event={"space": "no-slash"}), Reason.BAD_FIELD),
    (_payload(event={"seq": 0}), Reason.BAD_FIELD),
    (_payload(event={"seq": 1.5}), Reason.BAD_FIELD),
    (_payload(event={"at": "2026-11-26T10:00:00"}), Reason.BAD_FIELD),
    (_payload(event={"at": "yesterday"}), Reason.BAD_FIELD),
    (_payload(event={"confidence": 1.5}), Reason.BAD_FIELD),
    (_payload(event={"colour": "red"}), Reason.UNKNOWN_FIELD),
    (b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", Reason.OVERSIZE),
])
def test_rejections_carry_their_reason(raw: bytes, reason: Reason) -> None:
    with pytest.raises(WireError) as info:
        decode_events(raw)
    assert info.value.reason is reason


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    assert decode_events(b"\xef\xbb\xbf" + _payload()) == decode_events(_payload())


def test_missing_fields_and_duplicate_seqs() -> None:
    no_at = json.loads(_payload())
    del no_at["events"][0]["at"]
    with pytest.raises(WireError) as info:
        decode_events(json.dumps(no_at).encode())
    assert info.value.reason is Reason.MISSING_FIELD
    twice = json.loads(_payload())
    twice["events"] *= 2
    with pytest.raises(WireError) as info:
        decode_events(json.dumps(twice).encode())
    assert info.value.reason is Reason.DUPLICATE_SEQ


def test_gateway_must_match_its_topic() -> None:
    with pytest.raises(WireError) as info:
        decode_events(_payload(), expect_gateway="gw-other")
    assert info.value.reason is Reason.GATEWAY_MISMATCH


def test_times_are_normalised_to_utc() -> None:
    batch = decode_events(_payload(event={"at": "2026-11-26T13:30:00+03:30"}))
    assert batch.events[0].at == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_status_round_trip_and_last_will_without_time() -> None:
    birth = Status(True, 3, datetime(2026, 1, 1, tzinfo=UTC))
    assert decode_status(encode_status(birth)) == birth
    assert decode_status(b'{"v":1,"online":false,"boot":3}') == Status(False, 3)
    with pytest.raises(WireError):
        decode_status(b'{"v":1,"online":"yes","boot":3}')


@given(st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True), gateway_ids, st.sampled_from(Channel))
def test_topics_round_trip(tenant: str, gw: str, channel: Channel) -> None:
    rendered = topic(tenant, gw, channel)
    assert Topic.parse(rendered) == Topic(TenantId(tenant), GatewayId(gw), channel)
    prefixed = topic(tenant, gw, channel, prefix="t1/parkbazaar/v1")
    assert Topic.parse(prefixed, "t1/parkbazaar/v1").gateway == gw


@pytest.mark.parametrize("text", [
    "parkbazaar/v1/shiraz/gw/unknown", "parkbazaar/v1/Shiraz/gw/events", "parkbazaar/v2/a/b/events",
    "x/parkbazaar/v1/a/b/events", "parkbazaar/v1/a/b/c/events", "parkbazaar/v1/a/b c/events",
])
def test_bad_topics_are_refused(text: str) -> None:
    with pytest.raises(TopicError):
        Topic.parse(text)


def test_shared_subscription_filter() -> None:
    assert subscription(Channel.EVENTS, share_group="ingest") == "$share/ingest/parkbazaar/v1/+/+/events"
    assert subscription(Channel.STATUS) == "parkbazaar/v1/+/+/status"


@pytest.mark.parametrize(("kind", "value"), [(TenantId, "Shiraz"), (TenantId, "x" * 41),
                                             (GatewayId, "gw/1"), (SpaceId, ""), (SiteId, "-lot")])
def test_ids_refuse_bad_values(kind: type, value: str) -> None:
    with pytest.raises(IdError):
        kind(value)


def test_naive_times_cannot_be_encoded() -> None:
    e = OccupancyEvent(1, SpaceRef.parse("a/b"), SpaceState.FREE, datetime(2026, 1, 1) + timedelta(0),
                       Source.SENSOR)
    with pytest.raises(ValueError, match="naive"):
        encode_events(EventBatch(GatewayId("g"), 1, (e,)))
