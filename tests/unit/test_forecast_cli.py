"""``parkbazaar forecast predict|eval`` on small CSV files: output, exit codes, errors."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from occupancy.forecast.evaluate import parse_holidays
from occupancy.forecast.synthetic import LONDON, make_city, to_csv
from parkbazaar.cli import main

CITY = replace(LONDON, sites=2, days=21, start=date(2024, 8, 5), cadence_min=15, seed=3)
TEST_FROM = "2024-08-19T00:00:00Z"


@pytest.fixture(scope="module")
def city_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("forecast") / "city.csv"
    path.write_text(to_csv(make_city(CITY)))
    return path


def test_predict_writes_one_row_per_origin_and_horizon(city_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    code = main(["forecast", "predict", str(city_csv), "--test-from", TEST_FROM, "--horizons", "15,30,60",
                 "--out", str(out), "--tz", CITY.tz])
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["site", "at", "horizon_min", "free", "lo80", "hi80"]
    source = list(csv.DictReader(city_csv.open()))
    origins = [r for r in source if r["at"] >= TEST_FROM]
    assert len(rows) == 3 * len(origins)
    assert {(r["site"], r["at"]) for r in rows} == {(r["site"], r["at"]) for r in origins}
    assert {r["horizon_min"] for r in rows} == {"15", "30", "60"}
    for r in rows[:300]:
        assert 0 <= float(r["lo80"]) <= float(r["free"]) <= float(r["hi80"])


def test_eval_prints_the_forecaster_next_to_both_baselines(city_csv: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "eval", str(city_csv), "--test-from", TEST_FROM, "--tz", CITY.tz]) == 0
    out = capsys.readouterr().out
    assert "forecaster" in out and "persistence" in out and "profile delta" in out
    assert main(["forecast", "eval", str(city_csv), "--test-from", TEST_FROM, "--tz", CITY.tz,
                 "--horizons", "30,60", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert [s["horizon_min"] for s in scores] == [30, 60]
    for s in scores:
        assert s["points"] > 100
        assert set(s["mae"]) == {"forecaster", "persistence", "profile_delta"}
        assert 0 < s["coverage80"] <= 1


@pytest.mark.parametrize(("text", "where"), [
    ("site,capacity,at,free\na,10,2024-01-01T00:00:00Z,3\na,10,yesterday,4\n", ":3: column 'at'"),
    ("site,capacity,at,free\na,ten,2024-01-01T00:00:00Z,3\n", ":2: column 'capacity'"),
    ("site,capacity,at,free\na,10,2024-01-01T00:00:00Z,\n", ":2: column 'free'"),
    ("site,capacity,at,free\na,0,2024-01-01T00:00:00Z,0\n", "not positive"),
    ("site,cap,at,free\na,10,2024-01-01T00:00:00Z,3\n", ":1: missing column(s) capacity"),
    ("site,capacity,at,free\na,10\n", ":2: 2 fields"),
    ("site,capacity,at,free\n", "no data rows"),
])
def test_a_bad_csv_is_refused_naming_the_line_and_column(text: str, where: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    code = main(["forecast", "predict", str(path), "--test-from", "2024-01-01T00:00:00Z",
                 "--out", str(tmp_path / "p.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert where in err and str(path) in err


@pytest.mark.parametrize(("args", "message"), [
    (["--test-from", "soon"], "--test-from"),
    (["--test-from", TEST_FROM, "--horizons", "15,x"], "--horizons"),
    (["--test-from", TEST_FROM, "--horizons", "0"], "--horizons"),
    (["--test-from", TEST_FROM, "--tz", "Mars/Olympus"], "unknown time zone"),
    (["--test-from", TEST_FROM, "--holidays", "2024-13-01"], "not a date"),
    (["--test-from", "2030-01-01T00:00:00Z"], "no row at or after"),
    (["--test-from", "2000-01-01T00:00:00Z"], "no row before"),
])
def test_bad_options_exit_2(args: list[str], message: str, city_csv: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "eval", str(city_csv), *args]) == 2
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(city_csv: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["forecast", "predict", str(city_csv), "--test-from", TEST_FROM])  # no --out
    assert exc.value.code == 2


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "eval", str(tmp_path / "none.csv"), "--test-from", TEST_FROM]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_an_unwritable_output_exits_1(city_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "p.csv"
    assert main(["forecast", "predict", str(city_csv), "--test-from", TEST_FROM, "--out", str(out),
                 "--tz", CITY.tz]) == 1


def test_holidays_come_as_a_list_or_a_file(tmp_path: Path) -> None:
    assert parse_holidays("2024-03-20, 2024-03-21") == (19802, 19803)
    f = tmp_path / "holidays.txt"
    f.write_text("# Nowruz\n2024-03-20\n2024-03-21  # second day\n")
    assert parse_holidays(str(f)) == (19802, 19803)
    assert parse_holidays("") == ()
