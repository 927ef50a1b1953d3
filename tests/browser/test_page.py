"""The web page in a real browser (Playwright driving Debian's chromium) against the
whole chain of ``parkbazaar demo``: live counts change as the simulators run, the plan
is coloured live, Persian switches to right-to-left, a manager signs in and sees
attendance with a Jalali date."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from stack.embedded import free_port
from tests.support.api import token
from tests.support.browser import ARGS, CHROMIUM
from tests.support.waiting import wait_http

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")


@pytest.fixture
def demo(database: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKBAZAAR_")}
    env |= {"PARKBAZAAR_DATABASE_URL": database, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "parkbazaar",
            "demo",
            "--port",
            str(port),
            "--speed",
            "600",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        manager = asyncio.run(token(database, "shiraz", "manager", "fruit-market"))
        yield {"base": f"http://127.0.0.1:{port}", "token": manager}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_page_live_persian_and_manager(demo: dict[str, Any]) -> None:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 420, "height": 900})  # a phone
            refused: list[str] = []  # what the page's Content-Security-Policy blocked, if anything
            page.on("console",
                    lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(demo["base"] + "/")
            lot = page.locator('li[data-site="shiraz/central-lot"] .big')
            playwright_api.expect(lot).to_be_visible(timeout=20_000)

            # the driver's list changes as the simulator runs
            first = lot.inner_text()
            seen = {first}
            deadline = time.monotonic() + 45
            while len(seen) < 3 and time.monotonic() < deadline:
                page.wait_for_timeout(500)
                seen.add(lot.inner_text())
            assert len(seen) >= 3, f"free count never changed: {seen}"

            # the plan of the lot, coloured by state, changes live (SSE)
            page.locator('li[data-site="shiraz/central-lot"]').click()
            cells = page.locator("#zones .cell")
            playwright_api.expect(cells).to_have_count(128, timeout=15_000)
            before = page.eval_on_selector_all("#zones .cell", "els => els.map(e => e.className).join()")
            page.wait_for_function(
                "b => [...document.querySelectorAll('#zones .cell')].map(e => e.className).join() !== b",
                arg=before,
                timeout=30_000,
            )
            assert page.locator("#zones .cell.occupied").count() > 0

            # Persian: right to left, Persian digits
            page.locator("#lang").click()
            assert page.get_attribute("html", "dir") == "rtl" and page.get_attribute("html", "lang") == "fa"
            assert re.search("[۰-۹]", lot.inner_text())
            assert page.locator("h1").inner_text() == "جای خالی، همین حالا"
            page.locator("#lang").click()
            assert page.get_attribute("html", "dir") == "ltr"

            # a manager signs in and sees attendance, with the Solar Hijri date
            page.locator("#manager").click()
            page.fill("#token", "pbz_wrong")
            page.locator('#login button[type="submit"]').click()
            playwright_api.expect(page.locator("#whoami")).to_have_text("this token is not valid")
            page.fill("#token", demo["token"])
            page.locator('#login button[type="submit"]').click()
            playwright_api.expect(page.locator("#day-jalali")).not_to_be_empty(timeout=15_000)
            tehran = datetime.now(ZoneInfo("Asia/Tehran")).date()
            if tehran.weekday() == 4:  # the market is closed on Fridays: read Thursday
                playwright_api.expect(page.locator("#attendance tbody tr")).to_have_text("closed that day")
                page.fill("#day", (tehran - timedelta(days=1)).isoformat())
                page.dispatch_event("#day", "change")
            playwright_api.expect(page.locator("#attendance tbody tr")).to_have_count(66, timeout=15_000)
            assert "Solar Hijri" in page.locator("#day-jalali").inner_text()
            assert page.locator("#utilization .col").count() == 24
            # styles set through the CSSOM, which the policy allows: the bars have their widths
            assert page.eval_on_selector(".bar span", "e => e.style.width").endswith("%")
            assert not refused, refused
        finally:
            browser.close()
