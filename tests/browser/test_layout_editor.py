"""The camera layout editor (``/admin/layout``) in a real browser (Playwright driving Debian's
chromium: tests/browser/conftest.py) against a ``parkbazaar api`` process: an operator signs
in with an admin token, sees the camera's frame and polygons, draws, binds, moves and
deletes polygons, saves, reloads and finds the layout there; the API's refusals are shown
as it words them; and ``parkbazaar layout pull`` hands the saved layout to the gateway's
camera."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from gateway.adapters.camera import camera_adapter
from gateway.config import parse_gateway_config
from parkbazaar.cli import main
from tests.support.api import TENANT, seed_city, token
from tests.support.browser import api_process, in_thread, seeded_database

pytestmark = pytest.mark.slow
expect: Any = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed").expect
CAMERA = f"/v1/admin/{TENANT}/sites/lot-a/devices/cam-1"


@pytest.fixture
def served(pg_admin_dsn: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The API over a database of its own holding the test city with camera cam-1 (a1's
    polygon, layout version 1) and a 640×360 frame of it; an admin token."""
    with seeded_database(pg_admin_dsn, seed_city) as dsn, api_process(dsn, tmp_path / "api.log") as base:
        admin = in_thread(lambda: asyncio.run(token(dsn, TENANT, "admin")))
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}) as api:
            a1 = [[20, 20], [120, 20], [120, 90], [20, 90]]
            r = api.post(f"/v1/admin/{TENANT}/sites/lot-a/devices",
                         json={"id": "cam-1", "kind": "camera", "spaces": {"a1": a1}})
            assert r.status_code == 201, r.text
            frame = np.full((360, 640, 3), 110, np.uint8)
            jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
            r = api.put(f"{CAMERA}/frame", content=jpeg, headers={"Content-Type": "image/jpeg"})
            assert r.status_code == 200, r.text
            yield {"base": base, "token": admin, "api": api}


def _click(page: Any, box: dict[str, float], fx: float, fy: float) -> None:
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def _load_version(page: Any, version: int) -> None:
    """Bring an old version back into the editor from the history list."""
    page.locator("#versions li", has_text=f"v{version} ").get_by_role("button").click()
    expect(page.locator("#message")).to_contain_text(f"loaded version {version}")


def test_draw_bind_save_reload_and_the_gateway_pulls_it(browser: Any, served: dict[str, Any],
                                                         tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        refused: list[str] = []  # what the page's Content-Security-Policy blocked, if anything
        page.on("console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(served["base"] + "/admin/layout#lot-a/cam-1")
        page.fill("#token", "pbz_wrong")
        page.locator('#login button[type="submit"]').click()
        expect(page.locator("#message")).to_have_text("this token is not valid")
        page.fill("#token", served["token"])
        page.locator('#login button[type="submit"]').click()
        expect(page.locator("#version")).to_have_text("layout version: v1")
        expect(page.locator("#list li")).to_have_count(1)
        assert page.get_attribute("#frame", "href").startswith("blob:")
        assert page.get_attribute("#canvas", "viewBox") == "0 0 640 360"

        # draw a 4-corner polygon (it closes by itself at the 4th corner), bind it to a3
        box = page.locator("#canvas").bounding_box()
        page.locator("#canvas").focus()
        page.keyboard.press("n")
        for fx, fy in ((0.5, 0.5), (0.7, 0.5), (0.7, 0.7), (0.5, 0.7)):
            _click(page, box, fx, fy)
        expect(page.locator("#list li")).to_have_count(2)
        expect(page.locator("#space")).to_have_value("a2")  # the first space without a polygon
        page.fill("#space", "a3")
        expect(page.locator("#version")).to_contain_text("unsaved changes")

        # drag it by its middle; then draw a triangle (Enter closes it) and delete it
        before = page.get_attribute("#polys polygon.selected", "points")
        box = page.locator("#canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.65, box["y"] + box["height"] * 0.62, steps=4)
        page.mouse.up()
        moved = page.get_attribute("#polys polygon.selected", "points")
        assert moved != before
        page.keyboard.press("Shift+ArrowLeft")  # the keyboard moves it 10 px
        assert float(page.get_attribute("#polys polygon.selected", "points").split(",")[0]) == \
            float(moved.split(",")[0]) - 10
        page.screenshot(path=str(tmp_path / "editor.png"))
        page.keyboard.press("n")
        for fx, fy in ((0.1, 0.8), (0.2, 0.8), (0.15, 0.9)):
            _click(page, box, fx, fy)
        page.keyboard.press("Enter")
        expect(page.locator("#list li")).to_have_count(3)
        page.keyboard.press("Delete")
        expect(page.locator("#list li")).to_have_count(2)

        page.locator("#save").click()
        expect(page.locator("#message")).to_have_text("saved as version 2")
        expect(page.locator("#versions li")).to_have_count(2)

        # reload: signed in still (the tab's session), the saved layout is there
        page.reload()
        expect(page.locator("#version")).to_have_text("layout version: v2")
        expect(page.locator("#list li")).to_have_text(["a1 · 4 points", "a3 · 4 points"])

        # errors: one the page catches (a space the site lacks), one the API words (a save since)
        page.locator("#list li button").nth(1).click()
        page.fill("#space", "zz")
        page.locator("#save").click()
        expect(page.locator("#message")).to_have_text("zz is not a space of this site (create it first)")
        page.fill("#space", "a3")
        r = served["api"].put(f"{CAMERA}/layout", json={"spaces": {"a1": [[1, 1], [9, 1], [9, 9]]}})
        assert r.status_code == 200
        page.keyboard.press("Control+s")
        expect(page.locator("#message")).to_contain_text("at version 3 now, not 2: someone saved")
        _load_version(page, 2)
        page.once("dialog", lambda d: d.accept())  # "there are unsaved changes"
        page.locator("#reload").click()
        expect(page.locator("#version")).to_have_text("layout version: v3")
        _load_version(page, 2)
        page.locator("#save").click()
        expect(page.locator("#message")).to_have_text("saved as version 4")

        # a frame uploaded from the page, and an Ultralytics file imported through it
        png = cv2.imencode(".png", np.full((180, 320, 3), 90, np.uint8))[1].tobytes()
        page.locator("summary", has_text="Upload a frame").click()
        page.locator("#frame-file").set_input_files(
            files=[{"name": "f.png", "mimeType": "image/png", "buffer": png}])
        page.locator("#upload").click()
        expect(page.locator("#message")).to_have_text("frame uploaded")
        assert page.get_attribute("#canvas", "viewBox") == "0 0 320 180"
        boxes = json.dumps([{"points": [[1, 1], [50, 1], [50, 40], [1, 40]]},
                            {"points": [[60, 1], [99, 1], [99, 40]]}]).encode()
        page.locator("summary", has_text="Import a layout file").click()
        page.select_option("#imp-format", "ultralytics")
        page.fill("#imp-prefix", "a")
        page.locator("#imp-file").set_input_files(
            files=[{"name": "bounding_boxes.json", "mimeType": "application/json", "buffer": boxes}])
        page.locator("#import").click()
        expect(page.locator("#message")).to_have_text("imported and saved as version 5")
        expect(page.locator("#list li")).to_have_text(["a1 · 4 points", "a2 · 3 points"])
        page.locator("#imp-file").set_input_files(
            files=[{"name": "x.json", "mimeType": "application/json", "buffer": b"[]"}])
        page.locator("#import").click()
        expect(page.locator("#message")).to_contain_text("not a ultralytics layout")
        _load_version(page, 4)
        page.locator("#save").click()
        expect(page.locator("#message")).to_have_text("saved as version 6")
        assert not refused, refused
    finally:
        page.close()

    # the gateway's side: pull writes the camera's layout file, the camera reads a1 and a3
    (tmp_path / "token").write_text(served["token"])
    out = tmp_path / "cam-1.yaml"
    pull = ["layout", "pull", "--api", served["base"], "--tenant", TENANT, "--site", "lot-a",
            "--device", "cam-1", "--token-file", str(tmp_path / "token"), "--out", str(out)]
    assert in_thread(lambda: main(pull)) == 0  # its own event loop: not Playwright's thread
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "f.png"), np.full((360, 640, 3), 110, np.uint8))
    config = parse_gateway_config({
        "tenant": TENANT, "gateway": "gw-1", "state_dir": str(tmp_path / "state"),
        "broker": {"url": "mqtt://127.0.0.1:1"},
        "devices": [{"id": "cam-1", "kind": "camera", "source": "frames", "layout": "cam-1.yaml",
                     "site": "lot-a"}]}, tmp_path)
    adapter = camera_adapter(config, config.devices[0])  # type: ignore[arg-type]
    assert [str(s) for s in adapter.spaces] == ["lot-a/a1", "lot-a/a3"]
    assert set(map(str, in_thread(lambda: asyncio.run(adapter.read())))) == {"lot-a/a1", "lot-a/a3"}
