"""Pure parts of the API: Jalali dates, the token bucket, step parsing, opening windows,
NOTIFY payloads, NGSI-LD ids, secret hashing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dashboard_api.auth import Principal, hash_secret, verify_secret
from dashboard_api.deps import parse_step
from dashboard_api.jalali import jalali_iso
from dashboard_api.limits import take
from dashboard_api.live import parse_notification, sse
from dashboard_api.market import opening_window
from dashboard_api.ngsi import opening_hours, parse_urn


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 3, 20), "1403-01-01"),
        (date(2025, 3, 20), "1403-12-30"),
        (date(2025, 3, 21), "1404-01-01"),
        (date(2026, 1, 15), "1404-10-25"),
        (date(1979, 3, 21), "1358-01-01"),
    ],
)
def test_jalali(day: date, expected: str) -> None:
    assert jalali_iso(day) == expected


def test_token_bucket() -> None:
    bucket, wait = take(None, 0.0, rate=1.0, burst=2)
    bucket, wait = take(bucket, 0.0, 1.0, 2)
    assert wait == 0
    bucket, wait = take(bucket, 0.0, 1.0, 2)
    assert wait == pytest.approx(1.0)
    _, wait = take(bucket, 1.0, 1.0, 2)
    assert wait == 0


def test_parse_step() -> None:
    assert parse_step("5m") == timedelta(minutes=5) and parse_step("1d") == timedelta(days=1)
    for bad in ("0m", "5", "m", "-1h", "1w"):
        with pytest.raises(ValueError, match="step"):
            parse_step(bad)


def test_opening_window() -> None:
    hours = {"open": "07:00", "close": "21:00", "closed_days": ["friday"]}
    open_at, close_at = opening_window(date(2026, 1, 15), hours, "Asia/Tehran") or (None, None)
    assert open_at == datetime(2026, 1, 15, 3, 30, tzinfo=UTC) and close_at == datetime(
        2026, 1, 15, 17, 30, tzinfo=UTC
    )
    assert opening_window(date(2026, 1, 16), hours, "Asia/Tehran") is None
    _, close_at = opening_window(date(2026, 1, 15), {"open": "06:00", "close": "24:00"}, "UTC") or (
        None,
        None,
    )
    assert close_at == datetime(2026, 1, 16, tzinfo=UTC)


def test_notifications_and_sse() -> None:
    assert parse_notification(
        '{"v":1,"changes":[{"space_id":1,"site_id":4},{"space_id":2,"site_id":5}]}'
    ) == {4, 5}
    assert parse_notification("not json") == set()
    assert sse("counts", {"a": datetime(2026, 1, 1, tzinfo=UTC)}, "12") == (
        'id: 12\nevent: counts\ndata: {"a":"2026-01-01T00:00:00Z"}\n\n'
    )


def test_ngsi_ids_and_hours() -> None:
    assert parse_urn("urn:ngsi-ld:ParkingSpot:shiraz:lot:A-1") == ("ParkingSpot", ["shiraz", "lot", "A-1"])
    assert parse_urn("urn:ngsi-ld:OffStreetParking:shiraz:lot") == ("OffStreetParking", ["shiraz", "lot"])
    assert parse_urn("urn:ngsi-ld:ParkingSpot:shiraz:lot") is None
    assert opening_hours({"open": "07:00", "close": "21:00", "closed_days": ["friday"]}) == (
        "Mo,Tu,We,Th,Sa,Su 07:00-21:00"
    )


def test_secrets_and_principals() -> None:
    stored = hash_secret("s3cret")
    assert stored.startswith("$7$101$") and verify_secret("s3cret", stored) and not verify_secret("x", stored)
    manager = Principal(1, "shiraz", "manager", ("market",))
    assert manager.may_manage("shiraz", "market") and not manager.may_manage("shiraz", "lot")
    assert not manager.may_manage("tehran") and not manager.may_administer("shiraz")
    assert Principal(2, "shiraz", "admin").may_manage("shiraz", "lot")
