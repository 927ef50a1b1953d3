"""The pure parts of the token life cycle: refusal reasons, durations, expiry bounds, the CLI's
id argument and table, and the admin API's request body."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from dashboard_api.auth import refusal
from dashboard_api.routes.tokens import TokenIn
from dashboard_api.tokens import (
    MAX_LIFETIME,
    TokenInfo,
    check_expiry,
    expiry_from,
    parse_duration,
    parse_token_id,
    token_table,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_refusal_names_revoked_before_expired() -> None:
    past = NOW - timedelta(seconds=1)
    assert refusal(None, None, NOW) is None
    assert refusal(None, NOW + timedelta(seconds=1), NOW) is None
    assert refusal(None, NOW, NOW) == "expired"  # the instant of expiry is already refused
    assert refusal(past, past, NOW) == "revoked"


@pytest.mark.parametrize(("text", "want"), [("90m", timedelta(minutes=90)), ("12h", timedelta(hours=12)),
                                             ("30d", timedelta(days=30)), ("2w", timedelta(weeks=2))])
def test_durations(text: str, want: timedelta) -> None:
    assert parse_duration(text) == want


@pytest.mark.parametrize("text", ["0d", "30", "d", "-1d", "1.5h", "30 d", "²d", "٣d", "1y", "123456d", ""])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_expiry_from_options() -> None:
    assert expiry_from(expires_in=None, expires_at=None, now=NOW) is None
    assert expiry_from(expires_in="30d", expires_at=None, now=NOW) == NOW + timedelta(days=30)
    tehran = expiry_from(expires_in=None, expires_at="2027-03-21T00:00:00+03:30", now=NOW)
    assert tehran == datetime(2027, 3, 20, 20, 30, tzinfo=UTC) and tehran.tzinfo is UTC
    with pytest.raises(ValueError, match="within"):
        expiry_from(expires_in="99999w", expires_at=None, now=NOW)
    with pytest.raises(ValueError, match="ISO 8601"):
        expiry_from(expires_in=None, expires_at="next tuesday", now=NOW)


@pytest.mark.parametrize(("when", "why"), [
    (datetime(2027, 1, 1), "UTC offset"),
    (NOW, "future"),
    (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "future"),
    (datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))), "within"),
    (NOW + MAX_LIFETIME + timedelta(seconds=1), "within"),
])
def test_expiry_out_of_range_is_refused(when: datetime, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_expiry(when, NOW)


def test_token_id_argument() -> None:
    assert parse_token_id("42") == 42
    for bad in ("0", "-1", "²", "٣", "1e3", "2147483648", "99999999999"):
        with pytest.raises(ValueError, match="positive whole number"):
            parse_token_id(bad)


def test_table_shows_state_and_never_more_than_the_listing() -> None:
    info = TokenInfo(id=7, tenant="t", role="manager", sites=["market", "lot-a"], label="Karimi",
                     created_at=NOW, expires_at=NOW + timedelta(days=1), last_used_at=None,
                     revoked_at=NOW, state="revoked")
    lines = token_table([info]).splitlines()
    assert lines[0].split()[:3] == ["ID", "ROLE", "SITES"]
    assert lines[1].split() == ["7", "manager", "market,lot-a", "Karimi", "2026-11-30T12:00Z",
                                "2026-12-01T12:00Z", "-", "revoked", "2026-11-30T12:00Z"]


def test_body_is_strict() -> None:
    assert TokenIn.model_validate({"role": "manager", "sites": ["market"]}).sites == ["market"]
    bad = [
        {"role": "owner"},
        {"role": "manager", "extra": 1},
        {"role": "manager", "sites": ["Market"]},
        {"role": "manager", "sites": ["m²"]},
        {"role": "manager", "sites": ["x"] * 101},
        {"role": "manager", "label": "a\x00b"},
        {"role": "manager", "label": "x" * 201},
        {"role": "manager", "label": ""},
        {"role": "manager", "expires_at": "2027-01-01T00:00:00"},  # no offset
        {"role": "admin", "sites": ["market"]},
    ]
    for body in bad:
        with pytest.raises(ValidationError):
            TokenIn.model_validate(body)
    assert TokenIn.model_validate({"role": "manager", "label": "آقای کریمی"}).label == "آقای کریمی"
