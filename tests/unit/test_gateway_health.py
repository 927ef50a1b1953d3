"""``health`` and ``cmd`` payloads: round trips and strict decoding; Modbus read planning."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.adapters.modbus import plan_reads
from occupancy.health import (
    Command,
    DeviceHealth,
    GatewayHealth,
    LorawanCounts,
    OutboxHealth,
    decode_command,
    decode_health,
    encode_command,
    encode_health,
)
from occupancy.ids import DeviceId, GatewayId
from occupancy.wire import Reason, WireError

AT = datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=UTC)


def health() -> GatewayHealth:
    device = DeviceHealth(DeviceId("bus-1"), "modbus", False, AT, 3, 2, "timeout", None, 48, 48)
    sim = DeviceHealth(DeviceId("sim-1"), "simulated", True, AT, 0, 0, None, 87.5, 4, 0)
    return GatewayHealth(GatewayId("gw-1"), 12, AT, 3600.25, "7", True,
                         OutboxHealth(10, 1000, 5, 0), 3, 9, (device, sim))


def test_health_round_trip() -> None:
    assert decode_health(encode_health(health())) == health()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[]", Reason.NOT_AN_OBJECT),
        (b'{"v":2}', Reason.UNSUPPORTED_VERSION),
        (b"{", Reason.MALFORMED_JSON),
    ],
)
def test_bad_health_is_refused(payload: bytes, reason: Reason) -> None:
    with pytest.raises(WireError) as err:
        decode_health(payload)
    assert err.value.reason is reason


def test_health_with_an_unknown_key_or_bad_count_is_refused() -> None:
    good = encode_health(health()).decode()
    with pytest.raises(WireError, match="unknown_field"):
        decode_health(good.replace('"boot":12', '"boot":12,"x":1').encode())
    with pytest.raises(WireError, match="bad_field"):
        decode_health(good.replace('"depth":10', '"depth":-1').encode())


def lorawan_health() -> GatewayHealth:
    sensor = DeviceHealth(DeviceId("70b3d5e75e000001"), "lorawan", True, AT, 0, 0, None, 91.0, 1, 0,
                          temperature_c=21.5, rssi_dbm=-101.0, snr_db=-2.5, f_cnt=4711,
                          clock="network")
    h = health()
    return GatewayHealth(h.gateway, h.boot, h.at, h.uptime_s, h.config_version, h.connected,
                         h.outbox, h.connects, h.reconnect_attempts, (*h.devices, sensor),
                         LorawanCounts(uplinks=10, duplicates=4, late=1, fcnt_resets=1, joins=2,
                                       unknown_devices=3, undecodable=1, malformed=2))


def test_lorawan_keys_round_trip_and_stay_optional() -> None:
    assert decode_health(encode_health(lorawan_health())) == lorawan_health()
    plain = encode_health(health())
    assert b"lorawan" not in plain and b"rssi_dbm" not in plain  # old payloads are unchanged


@pytest.mark.parametrize(("old", "new"), [
    ('"clock":"network"', '"clock":"sundial"'),
    ('"f_cnt":4711', '"f_cnt":-1'),
    ('"rssi_dbm":-101.0', '"rssi_dbm":"loud"'),
    ('"joins":2', '"joins":2,"extra":1'),
    ('"late":1', '"late":true'),
])
def test_bad_lorawan_keys_are_refused(old: str, new: str) -> None:
    good = encode_health(lorawan_health()).decode()
    assert old in good
    with pytest.raises(WireError):
        decode_health(good.replace(old, new).encode())


def test_command_round_trip_and_optional_keys() -> None:
    cmd = Command("7", heartbeat_s=120.0)
    assert decode_command(encode_command(cmd)) == cmd
    assert decode_command(b'{"v":1,"version":8}') == Command("8")


@pytest.mark.parametrize(
    "payload",
    [b'{"v":1}', b'{"v":1,"version":"7","heartbeat_s":0}', b'{"v":1,"version":"7","x":1}',
     b'{"v":1,"version":"7","heartbeat_s":true}', b'{"v":1,"version":""}'],
)
def test_bad_commands_are_refused(payload: bytes) -> None:
    with pytest.raises(WireError):
        decode_command(payload)


def test_modbus_reads_are_merged_within_the_limits() -> None:
    assert plan_reads([0, 1, 2, 3], 125) == [(0, 4)]
    assert plan_reads([100, 0, 1, 40], 125, max_gap=16) == [(0, 2), (40, 1), (100, 1)]
    assert plan_reads(list(range(300)), 125) == [(0, 125), (125, 125), (250, 50)]
    assert plan_reads([5, 9], 125, max_gap=16) == [(5, 5)]
