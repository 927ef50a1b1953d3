"""Forecasts on the page, against an API over a tenant with two weeks of synthetic history
(tests/support/forecast.py) whose models ingest's maintenance has fitted: a site with a
model shows its free spaces 15, 30 and 60 minutes ahead with the 80 % interval, in English
and in Persian (Persian digits); a site without a model says it is the current count
carried forward; after "Near me", an arrival time ranks the list as the API ranks it,
each site with its expected free spaces on arrival. One API process for the module, one
page load per test; axe-core and a 360 px screen check the new parts.

The page's sentences are checked against the very answers it received (the forecast
moves with the clock), formatted here by the page's rules. With
``PARKBAZAAR_TEST_SCREENS=DIR`` the tests save screenshots there."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ingest.forecasting import run_forecasts
from tests.support.browser import AXE_SERIOUS, api_process, seeded_database
from tests.support.forecast import TENANT, seed_history

pytestmark = [pytest.mark.slow]
expect: Any = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed").expect

DAYS = 14  # enough for the weekly model
NAMES_FA = {"busy": "پارکینگ پرکار", "quiet": "پارکینگ آرام", "new": "پارکینگ تازه"}
HERE = {"latitude": 29.6, "longitude": 52.5}  # beside the three sites
LATIN, PERSIAN = re.compile("[0-9]"), re.compile("[۰-۹]")
TO_FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
SCREENS = os.environ.get("PARKBAZAAR_TEST_SCREENS")


async def _seed(dsn: str) -> None:
    """History and fitted models for busy and quiet; 'new' has none, and 2 of its 5 spaces
    taken now; Persian names."""
    con = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        await seed_history(con, days=DAYS, now=now)
        await run_forecasts(con, now=now, history_days=DAYS, refit_s=86400, budget_s=60)
        for site, name in NAMES_FA.items():
            await con.execute("UPDATE sites SET name_fa = $1 WHERE slug = $2", name, site)
        await con.execute(
            """INSERT INTO space_state (space_id, state, observed_at, source, gateway_id, seq, changed_at)
               SELECT sp.id, CASE WHEN sp.slug IN ('s001', 's002') THEN 'occupied' ELSE 'free' END, now(),
                      'sensor', (SELECT id FROM gateways LIMIT 1), 1, now()
               FROM spaces sp JOIN sites si ON si.id = sp.site_id WHERE si.slug = 'new'""")
    finally:
        await con.close()


@pytest.fixture(scope="module")
def forecast_api(pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with seeded_database(pg_admin_dsn, _seed) as dsn, api_process(
            dsn, tmp_path_factory.mktemp("api") / "api.log") as base:
        yield base


def likely(lang: str, h: dict[str, Any], method: str | None = None) -> str:
    """The page's sentence for one horizon (i18n.js `likelyFree`; JavaScript rounds halves up)."""
    free, lo, hi, m = math.floor(h["free"] + 0.5), h["lo80"], h["hi80"], h["minutes"]
    if lang == "en":
        line = f"likely {free} free ({lo}–{hi}) if you arrive in {m} min" if lo != hi else \
            f"likely {free} free if you arrive in {m} min"
        return line + (" (current count carried forward)" if method == "persistence" else "")
    line = f"احتمالاً {free} جای خالی ({lo} تا {hi}) اگر {m} دقیقهٔ دیگر برسید" if lo != hi else \
        f"احتمالاً {free} جای خالی اگر {m} دقیقهٔ دیگر برسید"
    return line.translate(TO_FA) + (" (همان شمار کنونی)" if method == "persistence" else "")


def _context(browser: Any, axe: str, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900 if width < 500 else 800},
                                  geolocation=HERE, permissions=["geolocation"])
    context.add_init_script(script=axe)  # before the page's CSP applies
    return context


def _shot(page: Any, name: str) -> None:
    if SCREENS:
        Path(SCREENS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENS) / name), full_page=True)


def _near_me_arriving_in(page: Any, minutes: int) -> list[dict[str, Any]]:
    """Near me, then an arrival time: the ranked list the page asked for."""
    page.locator("#near").click()
    expect(page.locator("#arrival")).to_be_visible(timeout=10_000)
    with page.expect_response(lambda r: f"arrive_in={minutes}" in r.url) as answer:
        page.select_option("#arrive", str(minutes))
    ranked: list[dict[str, Any]] = answer.value.json()
    expect(page.locator(".site .fc")).to_have_count(len(ranked), timeout=10_000)
    return ranked


def _shows_the_ranking(page: Any, lang: str, ranked: list[dict[str, Any]]) -> None:
    order = page.eval_on_selector_all(".site", "els => els.map((e) => e.dataset.site)")
    assert order == [f"{s['tenant']}/{s['site']}" for s in ranked]
    lines = page.locator(".site .fc").all_inner_texts()
    assert lines == [likely(lang, s["forecast"], s["forecast"]["method"]) for s in ranked]


def test_phone_in_persian_a_sites_forecast_and_near_me(browser: Any, forecast_api: str,
                                                        axe_source: str) -> None:
    context = _context(browser, axe_source, 360)
    page = context.new_page()
    try:
        with page.expect_response(lambda r: "/forecast?" in r.url) as answer:
            page.goto(f"{forecast_api}/?lang=fa#{TENANT}/busy")  # the deep links as before
        forecast = answer.value.json()
        assert forecast["method"] == "weekly-profile+ar"
        assert [h["minutes"] for h in forecast["horizons"]] == [15, 30, 60]
        items = page.locator("#fc-list li")
        expect(items).to_have_text([likely("fa", h) for h in forecast["horizons"]], timeout=10_000)
        shown = page.locator("#forecast").inner_text()
        assert PERSIAN.search(shown) and not LATIN.search(shown), shown
        expect(page.locator("#fc-method")).to_have_text(
            "پیش‌بینی از روی هفتهٔ معمول این محل، تعطیلاتش و روند امروز.")
        assert page.evaluate("() => location.hash") == f"#{TENANT}/busy"

        ranked = _near_me_arriving_in(page, 20)
        _shows_the_ranking(page, "fa", ranked)
        assert not LATIN.search(" ".join(page.locator(".site .fc").all_inner_texts()))
        assert [o.strip() for o in page.locator("#arrive option").all_inner_texts()][2] == "۲۰ دقیقهٔ دیگر"
        # the arrival time joins the site's horizons
        expect(items).to_have_count(4, timeout=10_000)
        expect(page.locator("#fc-list li.mine")).to_contain_text("۲۰ دقیقهٔ دیگر")

        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
        page.locator("#editor-link").scroll_into_view_if_needed()
        assert page.get_attribute("#editor-link", "href") == "/admin/layout"
        expect(page.locator("#editor-link")).to_have_text("ویرایشگر چیدمان دوربین‌ها (ویژهٔ گردانندگان)")
        assert page.evaluate(AXE_SERIOUS) == []
        _shot(page, "forecast-phone-fa.png")
    finally:
        context.close()


def test_desktop_in_english_carried_forward_and_near_me(browser: Any, forecast_api: str,
                                                         axe_source: str) -> None:
    context = _context(browser, axe_source, 1280)
    page = context.new_page()
    try:
        with page.expect_response(lambda r: "/forecast?" in r.url) as answer:
            page.goto(f"{forecast_api}/?lang=en#{TENANT}/new")
        carried = answer.value.json()
        assert carried["method"] == "persistence"
        expect(page.locator("#fc-method")).to_have_text(
            "Not a forecast: the current count carried forward (this site has no forecast model yet).",
            timeout=10_000)
        expect(page.locator("#fc-list li")).to_have_text([likely("en", h) for h in carried["horizons"]])
        wide = any(h["lo80"] != h["hi80"] for h in carried["horizons"])  # a 5-space site: rarely
        expect(page.locator("#fc-range")).to_have_text(
            "In brackets: where the count falls 8 times in 10." if wide else "")

        ranked = _near_me_arriving_in(page, 30)
        _shows_the_ranking(page, "en", ranked)
        assert {s["forecast"]["method"] for s in ranked} == {"weekly-profile+ar", "persistence"}

        with page.expect_response(lambda r: "/forecast?" in r.url) as answer:
            page.locator(f'.site[data-site="{TENANT}/busy"] a.name').click()
        fitted = answer.value.json()
        assert [h["minutes"] for h in fitted["horizons"]] == [15, 30, 60]
        expect(page.locator("#fc-list li")).to_have_text([likely("en", h) for h in fitted["horizons"]])
        expect(page.locator("#fc-list li.mine")).to_contain_text("in 30 min")
        assert page.evaluate("() => location.hash") == f"#{TENANT}/busy"
        expect(page.locator("#editor-link")).to_have_text("Camera layout editor (operators)")

        # the sentence of a wide interval, in both languages (the synthetic series' are narrow)
        interval = {"minutes": 30, "free": 41.25, "lo80": 33, "hi80": 49}
        said = page.evaluate("async (h) => { const i = await import('/static/i18n.js');"
                             " return [i.likelyFree('en', h), i.likelyFree('fa', h)]; }", interval)
        assert said == [likely("en", interval), likely("fa", interval)]
        assert said[0] == "likely 41 free (33–49) if you arrive in 30 min"
        assert page.evaluate(AXE_SERIOUS) == []
        _shot(page, "forecast-desktop-en-near.png")
    finally:
        context.close()
