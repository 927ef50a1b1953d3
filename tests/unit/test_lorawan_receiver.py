"""The ChirpStack receiver: duplicates, reordering, rejoins, unknown devices, garbage, clocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from occupancy.health import LorawanCounts
from occupancy.ids import DeviceId, SpaceRef
from occupancy.lorawan import FrameError
from occupancy.lorawan.chirpstack import (
    RxGateway,
    event_topic,
    join_payload,
    status_payload,
    uplink_payload,
)
from occupancy.lorawan.frames import Frame, FrameKind
from occupancy.lorawan.receiver import Binding, Receiver, SensorReading

APP = "app-1"
EUI, EUI2, STRANGER = "70b3d5e75e000001", "70b3d5e75e000002", "70b3d5e75e0000ff"
T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
SPACE, SPACE2 = SpaceRef.parse("lot1/S-001"), SpaceRef.parse("lot1/S-002")


def toy_decode(model: str, fport: int, data: bytes) -> Frame:
    """A test model: byte 0 is 1/0 (occupied/free), 0xEE an error frame, anything else refused;
    byte 1, when present, the battery in percent."""
    if data == b"\xbb":
        raise IndexError("a decoder bug")
    if model != "toy" or fport != 1 or not data or data[0] not in (0, 1, 0xEE):
        raise FrameError(f"toy: cannot read fPort {fport} {data.hex()}")
    if data[0] == 0xEE:
        return Frame("toy", fport, FrameKind.ERROR, fields={"code": 3})
    battery = float(data[1]) if len(data) > 1 else None
    return Frame("toy", fport, FrameKind.STATUS, occupied=bool(data[0]), battery_pct=battery,
                 temperature_c=21.5)


def receiver(**kw: object) -> Receiver:
    bindings = [Binding(EUI, DeviceId(EUI), SPACE, model="toy"),
                Binding(EUI2, DeviceId("bay-2"), SPACE2, occupied_path="object.occupied")]
    return Receiver(bindings, applications=[APP], decode=toy_decode, **kw)  # type: ignore[arg-type]


def up(r: Receiver, f_cnt: int, occupied: bool | int = True, *, dedup: str | None = None,
       at: datetime | None = None, addr: str = "00000001", eui: str = EUI,
       rx_time: datetime | None = None, data: bytes | None = None,
       decoded: dict[str, object] | None = None) -> list[SensorReading]:
    at = at if at is not None else T0 + timedelta(minutes=f_cnt)
    payload = uplink_payload(APP, eui, dedup_id=dedup or f"u{f_cnt}-{addr}", time=at, dev_addr=addr,
                             f_cnt=f_cnt, f_port=1,
                             data=data if data is not None else bytes([int(occupied), 80]),
                             rx=(RxGateway("gw-a", -101, 2.5, rx_time),), decoded=decoded)
    return r.receive(event_topic(APP, eui, "up"), payload, NOW)


def test_an_uplink_becomes_a_reading() -> None:
    r = receiver()
    (reading,) = up(r, 1, True)
    assert (reading.device, reading.space, reading.clock) == (EUI, SPACE, "network")
    assert reading.at == T0 + timedelta(minutes=1)
    assert (reading.occupied, reading.battery_pct, reading.temperature_c) == (True, 80.0, 21.5)
    assert (reading.rssi_dbm, reading.snr_db, reading.f_cnt, reading.event) == (-101, 2.5, 1, "up")
    assert r.counts() == LorawanCounts(uplinks=1)


def test_subscriptions_name_every_event_of_each_application() -> None:
    subs = receiver().subscriptions()
    assert f"application/{APP}/device/+/event/up" in subs
    assert f"application/{APP}/device/+/event/status" in subs and len(subs) == 6


def test_the_same_uplink_from_several_gateways_or_redelivered_is_a_duplicate() -> None:
    r = receiver()
    assert up(r, 1, dedup="d1")
    assert up(r, 1, dedup="d1") == []  # a QoS 1 redelivery
    assert up(r, 1, dedup="d1-again") == []  # the same fCnt under another deduplicationId
    assert r.counts() == LorawanCounts(uplinks=1, duplicates=2)


def test_the_dedup_memory_is_bounded() -> None:
    r = receiver(remember=2)
    for n in (1, 2, 3):
        assert up(r, n, dedup=f"d{n}")
    # d1 was forgotten; the session still knows fCnt 1 is old
    assert up(r, 1, dedup="d1") == []
    assert r.counts() == LorawanCounts(uplinks=3, late=1)


def test_a_late_frame_never_overwrites_a_newer_one() -> None:
    r = receiver()
    assert up(r, 5, True)
    assert up(r, 4, False) == []  # older fCnt, older time
    assert up(r, 6, False, at=T0) == []  # a higher fCnt but an older network time
    assert r.counts() == LorawanCounts(uplinks=1, late=2)


def test_a_rejoin_restarts_the_counter_and_is_not_a_replay() -> None:
    r = receiver()
    assert up(r, 40, True)
    join = join_payload(APP, EUI, dedup_id="j1", time=T0 + timedelta(minutes=50), dev_addr="00000002")
    (joined,) = r.receive(event_topic(APP, EUI, "join"), join, NOW)
    assert (joined.event, joined.occupied, joined.heard) == ("join", None, True)
    (first,) = up(r, 0, False, addr="00000002", at=T0 + timedelta(minutes=51))
    assert first.occupied is False
    assert up(r, 1, True, addr="00000002", at=T0 + timedelta(minutes=52))
    assert r.counts() == LorawanCounts(uplinks=3, fcnt_resets=1, joins=1)


def test_a_new_dev_addr_without_a_join_event_starts_a_session() -> None:
    r = receiver()
    assert up(r, 40)
    assert up(r, 2, addr="0000000a", at=T0 + timedelta(minutes=50))
    assert r.counts() == LorawanCounts(uplinks=2, fcnt_resets=1)


def test_a_lower_fcnt_later_in_time_is_a_counter_reset() -> None:
    r = receiver()  # e.g. an ABP device that rebooted: same devAddr, fCnt from 0
    assert up(r, 40)
    (reading,) = up(r, 0, False, at=T0 + timedelta(minutes=60))
    assert reading.occupied is False
    assert up(r, 39, at=T0 + timedelta(minutes=39)) == []  # a late frame of the old session
    assert r.counts() == LorawanCounts(uplinks=2, fcnt_resets=1, late=1)


def test_without_network_times_the_gateway_clock_is_used_and_lower_fcnts_are_late() -> None:
    r = receiver()
    payload = uplink_payload(APP, EUI, dedup_id="x1", time=None, dev_addr="00000001", f_cnt=3,
                             f_port=1, data=b"\x01")
    (reading,) = r.receive(event_topic(APP, EUI, "up"), payload, NOW)
    assert (reading.at, reading.clock) == (NOW, "gateway")
    payload = uplink_payload(APP, EUI, dedup_id="x2", time=None, dev_addr="00000001", f_cnt=1,
                             f_port=1, data=b"\x00")
    assert r.receive(event_topic(APP, EUI, "up"), payload, NOW) == []
    assert r.counts() == LorawanCounts(uplinks=1, late=1)


def test_the_rx_time_stands_in_for_a_missing_uplink_time() -> None:
    r = receiver()
    rx = T0 + timedelta(seconds=3)
    payload = uplink_payload(APP, EUI, dedup_id="x1", time=None, dev_addr="00000001", f_cnt=3,
                             f_port=1, data=b"\x01",
                             rx=(RxGateway("a", time=rx + timedelta(seconds=1)), RxGateway("b", time=rx)))
    (reading,) = r.receive(event_topic(APP, EUI, "up"), payload, NOW)
    assert (reading.at, reading.clock) == (rx, "network")


def test_unknown_devices_garbage_and_foreign_applications_are_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    r = receiver()
    for _ in range(3):
        assert up(r, 1, eui=STRANGER) == []
    assert r.receive(event_topic(APP, EUI, "up"), b"\xff garbage", NOW) == []
    assert r.receive(event_topic(APP, EUI, "up"), b'{"deduplicationId": 5}', NOW) == []
    assert r.receive("application/x/not/a/topic", b"{}", NOW) == []
    assert r.receive(event_topic("other-app", EUI, "up"), b"{}", NOW) == []
    assert r.counts() == LorawanCounts(unknown_devices=3, malformed=4)
    assert caplog.text.count(STRANGER) == 1  # logged once per DevEUI


def test_undecodable_frames_are_counted_but_show_the_device_alive() -> None:
    r = receiver()
    (reading,) = up(r, 1, data=b"\x07")
    assert reading.occupied is None and reading.heard and "undecodable" in (reading.error or "")
    (error,) = up(r, 2, data=b"\xee")
    assert error.occupied is None and "error" in (error.error or "")
    (bug,) = up(r, 3, data=b"\xbb")  # a decoder that raises anything else does not stop us
    assert bug.occupied is None and "IndexError" in (bug.error or "")
    assert up(r, 4, True)
    assert r.counts() == LorawanCounts(uplinks=4, undecodable=2)


def test_a_mac_only_uplink_says_nothing_about_occupancy() -> None:
    r = receiver()
    payload = uplink_payload(APP, EUI, dedup_id="m", time=T0, dev_addr="00000001", f_cnt=1,
                             f_port=0, data=b"")
    (reading,) = r.receive(event_topic(APP, EUI, "up"), payload, NOW)
    assert reading.occupied is None and reading.error is None


@pytest.mark.parametrize(("value", "want"), [(True, True), (False, False), (1, True), (0, False),
                                             ("occupied", True), ("FREE", False), (None, None)])
def test_the_occupied_path_of_the_device_profiles_codec(value: object, want: bool | None) -> None:
    r = receiver()
    decoded = {} if value is None else {"occupied": value}
    (reading,) = up(r, 1, eui=EUI2, decoded=decoded)
    assert (reading.device, reading.occupied) == ("bay-2", want)
    assert r.counts().undecodable == 0


def test_an_unusable_occupied_value_or_no_object_is_undecodable() -> None:
    r = receiver()
    (reading,) = up(r, 1, eui=EUI2, decoded={"occupied": "maybe"})
    assert reading.occupied is None and reading.error
    (reading,) = up(r, 2, eui=EUI2)
    assert reading.occupied is None and "object" in (reading.error or "")
    assert r.counts() == LorawanCounts(uplinks=2, undecodable=2)


def test_status_events_carry_the_battery_and_logs_carry_errors() -> None:
    r = receiver()
    status = status_payload(APP, EUI, dedup_id="s1", time=T0, battery_pct=55.0)
    (reading,) = r.receive(event_topic(APP, EUI, "status"), status, NOW)
    assert (reading.event, reading.battery_pct, reading.occupied) == ("status", 55.0, None)
    assert r.receive(event_topic(APP, EUI, "status"), status, NOW) == []  # a duplicate
    log = b'{"time":"2026-03-01T10:00:00Z","level":"ERROR","code":"UPLINK_CODEC","description":"x"}'
    (logged,) = r.receive(event_topic(APP, EUI, "log"), log, NOW)
    assert not logged.heard and "UPLINK_CODEC" in (logged.error or "")
    assert r.receive(event_topic(APP, EUI, "log"), log.replace(b"ERROR", b"INFO"), NOW) == []
    assert r.receive(event_topic(APP, EUI, "txack"), b"{}", NOW) == []
    (ack,) = r.receive(event_topic(APP, EUI, "ack"), b'{"acknowledged":true}', NOW)
    assert (ack.event, ack.clock, ack.at) == ("ack", "gateway", NOW)


def test_an_uplink_and_its_join_share_a_deduplication_id() -> None:
    r = receiver()
    join = join_payload(APP, EUI, dedup_id="same", time=T0, dev_addr="00000001")
    assert r.receive(event_topic(APP, EUI, "join"), join, NOW)
    assert up(r, 0, dedup="same", at=T0)
    assert r.counts() == LorawanCounts(uplinks=1, joins=1)


def test_a_network_time_ahead_of_the_gateway_clock_does_not_block_later_frames() -> None:
    r = receiver()
    assert up(r, 1, at=NOW + timedelta(hours=5))  # a bad clock on one frame
    assert up(r, 2, at=NOW)
    assert r.counts() == LorawanCounts(uplinks=2)


@pytest.mark.parametrize(("folder", "model"), [
    ("bosch-parking_lot_sensor", "bosch-tpl110"), ("nwave-g4_nps_sm", "nwave-nps405"),
    ("nwave-g4_nps_fm", "nwave-nps405"), ("netvox-r719a", "netvox-r719a")])
def test_the_shared_chirpstack_events_give_their_occupancy(shared_dir: Path, folder: str,
                                                           model: str) -> None:
    base = shared_dir / "datasets" / "lorawan-chirpstack" / folder
    for path in sorted(base.glob("payload*.json")):
        event = json.loads(path.read_text())
        values = json.loads((base / path.name.replace("payload", "result")).read_text())
        told = values["telemetry"][0]["values"].get("occupied")
        want = {"on": True, "off": False}.get(told, told)  # the Netvox converter says on/off
        eui = event["deviceInfo"]["devEui"]
        r = Receiver([Binding(eui, DeviceId("s"), SPACE, model=model)])
        topic = event_topic(event["deviceInfo"]["applicationId"], eui, "up")
        (reading,) = r.receive(topic, path.read_bytes(), NOW)
        assert (reading.occupied, reading.clock, reading.rssi_dbm) == (want, "network", -35), path
        assert r.counts() == LorawanCounts(uplinks=1), path
