"""ChirpStack v4 events: topics and payloads parse strictly; the shared fixtures read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from occupancy.lorawan.chirpstack import (
    Ack,
    ChirpstackError,
    Join,
    Log,
    RxGateway,
    Status,
    Topic,
    Uplink,
    event_topic,
    field_at,
    join_payload,
    parse_event,
    parse_topic,
    status_payload,
    uplink_payload,
)

APP, EUI = "0f3c1b7e-0000-4000-8000-000000000001", "70b3d5e75e000001"
T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)


def up_topic(event: str = "up") -> Topic:
    return parse_topic(event_topic(APP, EUI, event))


def test_topics_split_and_wrong_ones_are_refused() -> None:
    assert parse_topic(f"application/{APP}/device/70B3D5E75E000001/event/up") == Topic(APP, EUI, "up")
    assert parse_topic(f"cs/{APP}/device/{EUI}/event/join", "cs/") == Topic(APP, EUI, "join")
    for bad in (f"application/{APP}/device/{EUI}/event", f"application/{APP}/gateway/{EUI}/event/up",
                f"application/{APP}/device/123/event/up", f"other/{APP}/device/{EUI}/event/up",
                f"application//device/{EUI}/event/up"):
        with pytest.raises(ChirpstackError):
            parse_topic(bad)


def test_an_uplink_with_several_gateways() -> None:
    payload = uplink_payload(APP, EUI, dedup_id="d1", time=T0, dev_addr="01ABCDEF", f_cnt=7,
                             f_port=1, data=b"\x01\x02",
                             rx=(RxGateway("gw-a", -110, -3.5, T0.replace(second=1)),
                                 RxGateway("gw-b", -95, 4.0, T0)))
    up = parse_event(up_topic(), payload)
    assert isinstance(up, Uplink)
    assert (up.dedup_id, up.time, up.dev_addr, up.f_cnt, up.f_port, up.data) == (
        "d1", T0, "01abcdef", 7, 1, b"\x01\x02")
    assert (up.radio.gateways, up.radio.rssi_dbm, up.radio.snr_db, up.radio.time) == (2, -95, 4.0, T0)


def test_protobuf_defaults_are_left_out_and_read_as_defaults() -> None:
    up = parse_event(up_topic(), json.dumps({"deduplicationId": "d"}).encode())
    assert isinstance(up, Uplink)
    assert (up.f_cnt, up.f_port, up.data, up.time, up.object, up.radio.gateways) == (0, 0, b"", None, None, 0)


def test_nanoseconds_and_offsets() -> None:
    up = parse_event(up_topic(), b'{"deduplicationId":"d","time":"2026-03-01T13:30:00.123456789+03:30"}')
    assert isinstance(up, Uplink) and up.time == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(("payload", "message"), [
    (b"not json", "not JSON"),
    (b"[1]", "not an object"),
    (b'{"deduplicationId":"d","fCnt":"7"}', "fCnt"),
    (b'{"deduplicationId":"d","fCnt":-1}', "fCnt"),
    (b'{"deduplicationId":"d","fPort":true}', "fPort"),
    (b'{"deduplicationId":"d","data":"***"}', "base64"),
    (b'{"deduplicationId":"d","time":"yesterday"}', "time"),
    (b'{"deduplicationId":"d","time":"2026-03-01T10:00:00"}', "zone"),
    (b'{"deduplicationId":"d","devAddr":"xyz"}', "devAddr"),
    (b'{"deduplicationId":"d","rxInfo":[{"rssi":"loud"}]}', "rssi"),
    (b'{"deduplicationId":"d","rxInfo":{}}', "rxInfo"),
    (b'{"deduplicationId":"d","deviceInfo":{"devEui":"0000000000000002"}}', "devEui"),
    (b'{"fCnt":1}', "deduplicationId"),
    (b'{"deduplicationId":"d","object":[1]}', "object"),
    # hostile: out of range, not finite, too big, too deep, not UTF-8
    (b'{"deduplicationId":"d","fPort":300}', r"fPort=300: want 0\.\.255"),
    (b'{"deduplicationId":"d","fCnt":4294967296}', r"fCnt=4294967296: want 0\.\.4294967295"),
    (b'{"deduplicationId":"d","fCnt":99999999999999999999999}', "an integer of 23 characters"),
    (b'{"deduplicationId":"d","rxInfo":[{"rssi":1e999}]}', "not finite"),
    (b'{"deduplicationId":"d","rxInfo":[{"rssi":NaN}]}', "NaN"),
    (b'{"deduplicationId":"d","time":"9999-12-31T23:59:59Z"}', "want 2000..2200"),
    (b'{"deduplicationId":"' + b"x" * 70_000 + b'"}', "bytes > 65536"),
    (b"[" * 100_000 + b"]" * 100_000, "bytes > 65536"),
    (b"[" * 30_000 + b"]" * 30_000, "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
])
def test_bad_uplinks_name_the_field(payload: bytes, message: str) -> None:
    with pytest.raises(ChirpstackError, match=message):
        parse_event(up_topic(), payload)


def test_join_status_ack_and_log() -> None:
    join = parse_event(up_topic("join"), join_payload(APP, EUI, dedup_id="j", time=T0, dev_addr="00000002"))
    assert join == Join("j", T0, EUI, "00000002")
    status = parse_event(up_topic("status"), status_payload(APP, EUI, dedup_id="s", time=T0,
                                                            battery_pct=87.5, margin_db=12))
    assert status == Status("s", T0, EUI, 12, False, 87.5)
    unknown = parse_event(up_topic("status"), status_payload(APP, EUI, dedup_id="s", time=T0,
                                                             battery_pct=None))
    assert isinstance(unknown, Status) and unknown.battery_pct is None
    mains = parse_event(up_topic("status"), b'{"deduplicationId":"s","externalPowerSource":true}')
    assert isinstance(mains, Status) and mains.external_power and mains.battery_pct is None
    with pytest.raises(ChirpstackError, match="batteryLevel"):
        parse_event(up_topic("status"), b'{"deduplicationId":"s","batteryLevel":140}')
    assert parse_event(up_topic("ack"), b'{"acknowledged":true}') == Ack("ack", None, EUI, True)
    assert parse_event(up_topic("txack"), b'{"downlinkId":5}') == Ack("txack", None, EUI, True)
    log = parse_event(up_topic("log"), b'{"level":"ERROR","code":"UPLINK_CODEC","description":"boom"}')
    assert log == Log(None, EUI, "ERROR", "UPLINK_CODEC", "boom")


def test_other_events_are_refused() -> None:
    with pytest.raises(ChirpstackError, match="location"):
        parse_event(up_topic("location"), b"{}")


def test_field_paths() -> None:
    obj = {"object": {"occupied": True, "nested": {"x": 0}}}
    assert field_at(obj, "object.occupied") is True
    assert field_at(obj, "object.nested.x") == 0
    assert field_at(obj, "object.missing") is None
    assert field_at(obj, "object.occupied.deeper") is None


def test_the_shared_fixtures_parse(shared_dir: Path) -> None:
    folder = shared_dir / "datasets" / "lorawan-chirpstack"
    payloads = sorted(folder.glob("*/payload*.json"))
    assert len(payloads) >= 10
    for path in payloads:
        raw = json.loads(path.read_text())
        dev_eui = raw["deviceInfo"]["devEui"]
        topic = parse_topic(event_topic(raw["deviceInfo"]["applicationId"], dev_eui, "up"))
        up = parse_event(topic, path.read_bytes())
        assert isinstance(up, Uplink), path
        assert up.data and up.f_port and up.time is not None and up.radio.rssi_dbm is not None
