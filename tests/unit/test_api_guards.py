"""The pure parts of the API's refusals: buckets and classes, Content-Length, history
windows and steps, body values, and the content security policies."""

from __future__ import annotations

import base64
import hashlib
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dashboard_api import BadInput
from dashboard_api.bodies import json_value_problem
from dashboard_api.deps import check_year, parse_step
from dashboard_api.headers import docs_csp, page_csp, source_of
from dashboard_api.limits import RateClass, available, classify, content_length, take
from dashboard_api.routes.sites import history_window
from occupancy.config import ConfigError, load_settings

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_available_refills_up_to_the_burst_and_peeking_takes_nothing() -> None:
    bucket, _ = take(None, 0.0, rate=2.0, burst=3)
    assert available(bucket, 0.0, 2.0, 3) == 2
    assert available(bucket, 0.25, 2.0, 3) == 2.5
    assert available(bucket, 100.0, 2.0, 3) == 3
    assert available(None, 0.0, 2.0, 3) == 3


def test_classify_takes_the_first_class_whose_prefix_matches() -> None:
    manage = RateClass("manage", 1, 1, ("/v1/manage/",), guarded=True)
    ops = RateClass("ops", 1, 1, ("/metrics", "/healthz"))
    public = RateClass("public", 1, 1)
    assert classify("/v1/manage/x/alerts", [manage, ops], public) is manage
    assert classify("/metrics", [manage, ops], public) is ops
    assert classify("/v1/sites", [manage, ops], public) is public


def test_content_length_reads_digits_only() -> None:
    assert content_length({"headers": [(b"host", b"x"), (b"content-length", b"104857600")]}) == 104857600
    assert content_length({"headers": [(b"content-length", b"-1")]}) is None
    assert content_length({"headers": []}) is None


def test_step_is_ascii_positive_and_at_most_a_year() -> None:
    assert parse_step("5m") == timedelta(minutes=5)
    assert parse_step("366d") == timedelta(days=366)
    for bad in ("999999d", "367d", "0s", "٣m", "²m", "5 m", "5"):
        with pytest.raises(ValueError, match="step"):
            parse_step(bad)


def test_year_bounds() -> None:
    assert check_year(date(2026, 1, 1)) == date(2026, 1, 1)
    for bad in (date(1, 1, 1), date(9999, 12, 31), date(1999, 12, 31)):
        with pytest.raises(ValueError, match="between the years 2000 and 2999"):
            check_year(bad)


def test_history_window_defaults_and_refusals() -> None:
    step = timedelta(minutes=5)
    assert history_window(None, None, NOW, step, 5000) == (NOW - timedelta(days=1), NOW)
    cases = [
        (None, datetime(1, 1, 1, tzinfo=UTC), "to"),       # year 1: no arithmetic on it
        (datetime(9999, 12, 31, tzinfo=UTC), None, "from"),
        (None, datetime(2026, 1, 1), "to"),                 # no zone
        (NOW, NOW - step, "to"),                            # reversed
        (NOW - timedelta(days=30), NOW, "step"),            # 8640 points
    ]
    for start, end, where in cases:
        with pytest.raises(BadInput) as refused:
            history_window(start, end, NOW, step, 5000)
        assert refused.value.loc == ("query", where)


def test_json_value_problem_finds_nan_infinity_nul_and_depth() -> None:
    assert json_value_problem({"a": [1, 2.5, "x"], "b": {"c": None}}) is None
    assert json_value_problem({"a": [1, math.nan]}) == "a.1: numbers must be finite (no NaN or Infinity)"
    assert json_value_problem({"a": {"b": -math.inf}}) == "a.b: numbers must be finite (no NaN or Infinity)"
    assert json_value_problem({"v": "a\x00"}) == "v: text may not contain a NUL character"
    assert json_value_problem({"k\x00": 1}) == "the body: text may not contain a NUL character"
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    assert "nested deeper" in (json_value_problem(deep) or "")


def test_page_csp_allows_only_this_origin_and_the_tile_host() -> None:
    assert source_of("https://{s}.tile.example.org/{z}/{x}/{y}.png") == "https://*.tile.example.org"
    assert source_of("http://127.0.0.1:8080/{z}/{x}/{y}.png") == "http://127.0.0.1:8080"
    csp = page_csp("https://tiles.example/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://tiles.example;" in csp
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert "img-src 'self';" in page_csp(None)


@pytest.mark.parametrize(("url", "says"), [
    ("https://tiles.example/{z}/{x}.png", "has no {y}"),
    ("ftp://tiles.example/{z}/{x}/{y}.png", "is not an http(s) URL"),
    ("tiles.example/{z}/{x}/{y}.png", "is not an http(s) URL"),
])
def test_a_bad_tile_url_is_refused_naming_key_and_file(tmp_path: Path, url: str, says: str) -> None:
    config = tmp_path / "parkbazaar.yaml"
    config.write_text(f"api:\n  tile_url: {url}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert str(info.value).startswith(f"{config}: api.tile_url: ") and says in str(info.value)
    config.write_text("api:\n  tile_url: https://{s}.tiles.example/{z}/{x}/{y}.png\n")
    assert load_settings(config).api.tile_url == "https://{s}.tiles.example/{z}/{x}/{y}.png"


def test_docs_csp_admits_the_inline_script_by_its_hash() -> None:
    csp = docs_csp("<script src='/a.js'></script><script>go()</script>")
    digest = base64.b64encode(hashlib.sha256(b"go()").digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in csp and csp.count("'sha256-") == 1
