"""The page on a phone (360 px) and a desktop (1280 px), in Persian and English, against
an API over the test city (one API process for the module; one page load per test):
it fits the screen, every text is in the page's language (Persian digits, Jalali dates),
the map shows each site's live counts, axe-core finds nothing serious, the keyboard
reaches every control, and offline the service worker shows the last counts and their
age. The deep links `/?lang=fa|en` and `#tenant/site` open that language and that site."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.api import token
from tests.support.browser import in_thread, set_state

pytestmark = [pytest.mark.slow]
expect: Any = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed").expect

SITES = {"testcity/lot-a", "testcity/market", "othercity/lot-z"}
LATIN, PERSIAN = re.compile("[0-9]"), re.compile("[۰-۹]")
TITLES = {"fa": "پارک‌بازار — جای خالی، همین حالا", "en": "parkbazaar — free spaces, live"}
WORDS = {"fa": ("جای خالی، همین حالا", "زنده", "rtl"), "en": ("Free spaces, live", "live", "ltr")}
# axe-core: every rule, the serious and critical findings fail the test
AXE = """async () => (await axe.run(document)).violations
  .filter((v) => ["serious", "critical"].includes(v.impact))
  .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)"""


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page of a fresh context; `request.param`: (width, extra context options)."""
    width, options = getattr(request, "param", (1280, {}))
    context = browser.new_context(viewport={"width": width, "height": 800}, **options)
    page = context.new_page()
    page.refused = []  # what the page's Content-Security-Policy blocked, if anything
    page.on("console", lambda m: page.refused.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        yield page
    finally:
        context.close()


def _markers(page: Any) -> dict[str, str]:
    expect(page.locator(".leaflet-marker-icon .pin")).to_have_count(len(SITES), timeout=15_000)
    return dict(page.eval_on_selector_all(
        ".leaflet-marker-icon", "els => els.map(e => [e.dataset.site, e.textContent])"))


@pytest.mark.parametrize("lang", ["fa", "en"])
@pytest.mark.parametrize("width", [360, 1280])
def test_page_fits_speaks_the_language_and_passes_axe(
        browser: Any, city_api: str, axe_source: str, lang: str, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800})
    context.add_init_script(script=axe_source)  # before the page's CSP applies
    page = context.new_page()
    try:
        page.goto(f"{city_api}/?lang={lang}#testcity/lot-a")
        title, live, direction = WORDS[lang]
        expect(page.locator("#zones .cell")).to_have_count(4, timeout=15_000)  # the deep link's site
        expect(page.locator("#status")).to_contain_text(live)
        assert page.get_attribute("html", "lang") == lang and page.get_attribute("html", "dir") == direction

        # fits: no horizontal scrolling, the whole title on screen
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        box = page.locator("h1").bounding_box()
        assert page.locator("h1").inner_text() == title
        assert box["x"] >= 0 and box["x"] + box["width"] <= width

        # the map: a marker per site at its place, labelled with free/total
        markers = _markers(page)
        assert set(markers) == SITES
        digits = PERSIAN if lang == "fa" else LATIN
        other = LATIN if lang == "fa" else PERSIAN
        for text in markers.values():  # free/total, then the name on a desktop
            assert re.match(f"{digits.pattern}+/{digits.pattern}+", text), markers
        label = page.get_attribute('.leaflet-marker-icon[data-site="testcity/lot-a"]', "aria-label")
        assert label.startswith("پارکینگ الف" if lang == "fa" else "Lot A"), label

        # every text in the page's language: its digits only (ids like "a1" are written ltr)
        shown = page.evaluate("""() => [...document.querySelectorAll(
            '#status, .site .count, .site .meta, #detail-meta, .zone h3, .pin')].map((e) => {
              const c = e.cloneNode(true);  // without names from the site file (in <bdi>)
              c.querySelectorAll('bdi').forEach((b) => b.remove());
              return c.textContent; }).join(' ')""")
        assert digits.search(shown) and not other.search(shown), shown
        assert page.title() == TITLES[lang]
        en_keys, fa_keys = page.evaluate("async () => (await import('/static/i18n.js')).keys()")
        assert en_keys == fa_keys

        assert page.evaluate(AXE) == []
    finally:
        context.close()


def test_a_marker_follows_the_live_stream(page: Any, city_api: str, city_dsn: str) -> None:
    page.goto(f"{city_api}/?lang=fa#testcity/lot-a")
    expect(page.locator("#zones .cell")).to_have_count(4, timeout=15_000)
    pin = page.locator('.leaflet-marker-icon[data-site="testcity/lot-a"] .pin')
    before = pin.text_content()
    now = datetime.now(UTC)
    set_state(city_dsn, "lot-a", "a3", "free", now, int(time.time() * 1000))
    expect(page.locator('#zones .cell[data-space="a3"]')).to_have_class(re.compile("free"), timeout=10_000)
    expect(pin).not_to_have_text(before, timeout=10_000)
    free = int(pin.locator("b").text_content().translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")))
    assert free >= 1 and "r-unknown" not in pin.get_attribute("class")
    set_state(city_dsn, "lot-a", "a3", "occupied", now + timedelta(seconds=1), int(time.time() * 1000) + 1)
    expect(pin).to_have_text(before, timeout=10_000)


@pytest.mark.parametrize("page", [(360, {})], indirect=True)
def test_keyboard_reaches_the_controls_and_picks_a_site(page: Any, city_api: str) -> None:
    page.goto(f"{city_api}/?lang=en")
    _markers(page)
    reached = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("""() => { const e = document.activeElement, li = e.closest('.site');
            return e.id || e.dataset.site || (li ? 'site:' + li.dataset.site : '') || e.className; }"""))
    assert {"near", "manager", "lang"} <= reached, reached
    assert reached >= SITES, reached  # the markers
    assert {f"site:{s}" for s in SITES} <= reached, reached  # the list's links
    assert any("leaflet-control-zoom-in" in r for r in reached), reached
    page.focus('.leaflet-marker-icon[data-site="testcity/market"]')
    page.keyboard.press("Enter")
    expect(page.locator("#zones .cell")).to_have_count(3, timeout=10_000)
    assert page.evaluate("() => location.hash") == "#testcity/market"
    page.focus('.site[data-site="testcity/lot-a"] a.name')
    page.keyboard.press("Enter")
    expect(page.locator("#zones .cell")).to_have_count(4, timeout=10_000)
    page.focus("#lang")
    page.keyboard.press("Enter")
    assert page.get_attribute("html", "lang") == "fa"


@pytest.mark.parametrize("page", [(360, {})], indirect=True)
def test_offline_the_last_counts_show_with_their_age(page: Any, city_api: str) -> None:
    page.goto(f"{city_api}/?lang=en")
    _markers(page)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)
    assert page.evaluate("() => fetch('/v1/sites').then(r => r.ok)")  # through the worker: saved
    page.context.set_offline(True)
    page.reload()
    expect(page.locator("#status")).to_contain_text("offline: last known counts, saved", timeout=10_000)
    expect(page.locator("#status")).to_contain_text(re.compile(r"now|second|minute"))
    assert set(_markers(page)) == SITES
    expect(page.locator(".site")).to_have_count(len(SITES))
    page.locator("#lang").click()
    expect(page.locator("#status")).to_contain_text("آفلاین")
    page.context.set_offline(False)
    expect(page.locator("#status")).to_contain_text("زنده", timeout=15_000)


@pytest.mark.parametrize("page", [(360, {})], indirect=True)
def test_manager_in_persian_has_a_jalali_date_picker(page: Any, city_api: str, city_dsn: str) -> None:
    manager = in_thread(lambda: asyncio.run(token(city_dsn, "testcity", "manager")))
    page.goto(f"{city_api}/?lang=fa")
    _markers(page)
    page.locator("#manager").click()
    page.fill("#token", manager)
    page.locator('#login button[type="submit"]').click()
    expect(page.locator("#whoami")).to_have_text("وارد شده به عنوان مدیر، testcity", timeout=10_000)
    expect(page.locator("#day-fa")).to_be_visible(timeout=10_000)
    assert not page.locator("#day").is_visible()
    expect(page.locator("#day-jalali")).to_contain_text("میلادی")
    assert PERSIAN.search(page.locator("#jy option").first.inner_text())
    assert page.locator("#jm option").nth(8).inner_text() == "آذر"
    day = page.input_value("#day")
    target = "2" if page.input_value("#jd") == "1" else "1"  # another day of this Jalali month
    page.select_option("#jd", target)
    expect(page.locator("#day")).not_to_have_value(day)
    to_jalali = "async d => (await import('/static/i18n.js')).toJalali(d)"
    jalali = page.evaluate(to_jalali, page.input_value("#day"))
    assert jalali[2] == int(target)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert not LATIN.search(page.locator("#day-jalali").inner_text())


@pytest.mark.parametrize("page", [(1280, {})], indirect=True)
def test_the_map_shows_tiles_when_a_tile_server_is_set(page: Any, tiled_api: str) -> None:
    page.goto(f"{tiled_api}/?lang=en")
    _markers(page)
    page.wait_for_function("""() => [...document.querySelectorAll('img.leaflet-tile')]
        .some(i => i.complete && i.naturalWidth === 256)""", timeout=10_000)
    assert page.evaluate("() => [...document.scripts].every((s) => s.src.startsWith(location.origin))")
    assert not page.refused, page.refused
