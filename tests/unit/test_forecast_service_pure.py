"""The pure parts of the forecast service: the holiday list of the site file, the
forecast route's horizons, the counts' windows, which sites are due a refit, counts as
forecaster rows, and the answer for a site without a model."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dashboard_api.forecasts import (
    BAD_MODEL,
    NO_MODEL,
    NOTHING,
    ForecastInput,
    ModelCache,
    parse_horizons,
    site_forecast,
)
from ingest.forecasting import SiteRow, due, due_by_tenant
from ingest.site_counts import OVERLAP, WINDOW, boundary, next_window
from occupancy.forecast.counts import series_of_counts
from occupancy.sitefile import MAX_HOLIDAYS, SiteFileError, parse_site_file, read_site_file

NOW = datetime(2026, 3, 10, 12, 3, 20, tzinfo=UTC)


def _file(holidays: Any) -> dict[str, Any]:
    return {"tenant": {"id": "shiraz", "name": "Shiraz", "holidays": holidays}, "sites": []}


# --- the holiday list -----------------------------------------------------------------


def test_holidays_are_dates_alone_or_with_names_and_yaml_dates_count() -> None:
    text = """
tenant:
  id: shiraz
  name: Shiraz
  holidays:
    - 2026-03-20
    - "2026-03-22"
    - {date: 2026-03-21, name: Nowruz, name_fa: نوروز}
sites: []
"""
    days = parse_site_file(yaml.safe_load(text)).tenant.holidays
    assert [(h.date, h.name, h.name_fa) for h in days] == [
        (date(2026, 3, 20), None, None), (date(2026, 3, 22), None, None),
        (date(2026, 3, 21), "Nowruz", "نوروز")]
    assert parse_site_file(_file([])).tenant.holidays == []
    assert parse_site_file({"tenant": {"id": "x", "name": "X"}, "sites": []}).tenant.holidays == []


@pytest.mark.parametrize(("holidays", "where", "says"), [
    (["2026-02-30"], "tenant.holidays.0.date", "is not a real date"),
    (["20260320"], "tenant.holidays.0.date", "YYYY-MM-DD"),
    (["۲۰۲۶-۰۳-۲۰"], "tenant.holidays.0.date", "YYYY-MM-DD"),  # Persian digits
    ([20260320], "tenant.holidays.0.date", "YYYY-MM-DD"),
    (["2026-03-20T00:00:00"], "tenant.holidays.0.date", "YYYY-MM-DD"),
    (["1999-12-31"], "tenant.holidays.0.date", "outside the years 2000-2100"),
    (["2026-03-20", {"date": "2026-03-20", "name": "again"}], "tenant.holidays.1.date",
     "duplicate holiday '2026-03-20' (first at holidays.0.date)"),
    ([{"date": "2026-03-20", "nmae": "typo"}], "tenant.holidays.0.nmae", "Extra inputs"),
    ([{"name": "no date"}], "tenant.holidays.0.date", "Field required"),
    ("2026-03-20", "tenant.holidays", "valid list"),
])
def test_a_bad_holiday_is_named_by_its_key(holidays: Any, where: str, says: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_site_file(_file(holidays))
    errors = {".".join(str(p) for p in e["loc"]): e["msg"] for e in info.value.errors()}
    assert where in errors and says in errors[where], errors


def test_the_holiday_list_is_bounded() -> None:
    days = [(date(2000, 1, 1) + timedelta(days=i)).isoformat() for i in range(MAX_HOLIDAYS + 1)]
    with pytest.raises(ValidationError, match="at most 1000"):
        parse_site_file(_file(days))


def test_a_site_file_with_a_bad_holiday_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text("tenant: {id: x, name: X, holidays: [2026-13-01]}\nsites: []\n", "utf-8")
    with pytest.raises(SiteFileError, match=rf"^{path}: tenant\.holidays\.0\.date: .*2026-13-01"):
        read_site_file(path)


# --- the route's horizons ---------------------------------------------------------------


def test_horizons_are_whole_minutes_from_1_to_120() -> None:
    assert parse_horizons("15,30,60") == (15, 30, 60)
    assert parse_horizons(" 1, 120 ,45,45") == (1, 120, 45)
    for bad in ("", "0", "121", "15,", "1.5", "-5", "abc", "١٥", "15;30", "99999"):
        with pytest.raises(ValueError, match="whole minutes from 1 to 120"):
            parse_horizons(bad)
    with pytest.raises(ValueError, match="at most 12"):
        parse_horizons(",".join(str(m) for m in range(1, 14)))


# --- counts: windows and rows -----------------------------------------------------------


def test_count_windows_backfill_then_recount_the_last_hour() -> None:
    last = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert boundary(NOW) == last and boundary(last) == last
    first = next_window(None, now=NOW, history_days=56)
    assert first == (boundary(NOW - timedelta(days=56)), boundary(NOW - timedelta(days=56)) + WINDOW)
    assert next_window(last - timedelta(days=1), now=NOW, history_days=56) == (
        last - timedelta(days=1) - OVERLAP, last)
    assert next_window(last, now=NOW, history_days=56) == (last - OVERLAP, last)  # late events
    assert next_window(last + timedelta(hours=2), now=NOW, history_days=56) is None  # a clock gone back


def test_counts_become_shares_of_the_known_spaces() -> None:
    s = series_of_counts([300.0, 0.0, 600.0, 900.0, 1200.0], [5, 2, 1, 0, 3], [5, 8, 1, 0, 1],
                         [10, 10, 10, 10, 0])
    # t=600: 2 of 10 known (under half): left out; t=900: nothing known; t=1200: no spaces
    assert list(s.t) == [0.0, 300.0] and list(s.capacity) == [10.0, 10.0]
    assert list(s.share) == pytest.approx([0.2, 0.5])


# --- which sites are due ----------------------------------------------------------------


def _row(site: int, tenant: int, fitted_h: float | None, trained_h: float | None,
         last_h: float | None) -> SiteRow:
    def ago(h: float | None) -> datetime | None:
        return None if h is None else NOW - timedelta(hours=h)
    return SiteRow(site, tenant, ago(fitted_h), ago(trained_h), ago(last_h))


def test_a_site_is_due_with_new_counts_and_an_old_or_no_model() -> None:
    day = 86400.0
    assert due(_row(1, 1, None, None, 1), now=NOW, refit_s=day)  # never fitted, has counts
    assert not due(_row(1, 1, None, None, None), now=NOW, refit_s=day)  # no counts at all
    assert due(_row(1, 1, 25, 25, 0.1), now=NOW, refit_s=day)  # a day old, new counts
    assert not due(_row(1, 1, 2, 2, 0.1), now=NOW, refit_s=day)  # fitted two hours ago
    assert not due(_row(1, 1, 48, 30, 30), now=NOW, refit_s=day)  # old, but nothing new since


def test_due_tenants_come_never_fitted_first_then_oldest_model() -> None:
    rows = [_row(1, 10, 30, 30, 0), _row(2, 10, 50, 50, 0), _row(3, 20, 26, 26, 0),
            _row(4, 30, None, None, 1), _row(5, 30, 40, 40, 0), _row(6, 40, 1, 1, 0)]
    groups = due_by_tenant(rows, now=NOW, refit_s=86400.0)
    assert [[s.site_id for s in g] for g in groups] == [[4, 5], [1, 2], [3]]


# --- a site without a model -------------------------------------------------------------


def _input(model: dict[str, Any] | None = None, free: int = 7, occupied: int = 3) -> ForecastInput:
    return ForecastInput(timezone="Asia/Tehran", free=free, occupied=occupied, total=10,
                         fitted_at=None if model is None else NOW, model=model)


def test_a_site_without_a_model_carries_its_count_forward_and_says_so() -> None:
    f = site_forecast(("t", "new"), _input(), now=NOW, horizons=[15, 60], models=ModelCache())
    assert (f.method, f.note, f.capacity, f.observed_at) == ("persistence", NO_MODEL, 10, NOW)
    assert [(h.minutes, h.free) for h in f.horizons] == [(15, 7.0), (60, 7.0)]
    assert f.horizons[0].lo80 <= 7 <= f.horizons[0].hi80
    assert f.horizons[1].hi80 - f.horizons[1].lo80 > f.horizons[0].hi80 - f.horizons[0].lo80


def test_an_unreadable_model_falls_back_and_nothing_known_gives_no_horizons() -> None:
    bad = site_forecast(("t", "x"), _input({"format": 99}), now=NOW, horizons=[30], models=ModelCache())
    assert (bad.method, bad.note) == ("persistence", BAD_MODEL)
    blind = site_forecast(("t", "x"), _input(free=0, occupied=0), now=NOW, horizons=[30], models=ModelCache())
    assert (blind.method, blind.note, blind.horizons, blind.observed_at) == ("none", NOTHING, [], None)
