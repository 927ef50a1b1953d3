"""Render the web page's app icons (PNG, for the manifest) from ``icons/icon.svg`` with
chromium (Debian's, through Playwright): 192 and 512 px as drawn, and a 512 px
"maskable" one (the drawing at 70 % on a full-bleed background, inside the safe zone
that phones crop to a circle or squircle). Run after changing the SVG:

    python3 scripts/page_icons.py
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
ICONS = REPO / "dashboard_api" / "static" / "icons"
CHROMIUM = "/usr/bin/chromium"
BACKGROUND = "#1d2330"
# file name → (size in px, share of the size the drawing takes, background)
SIZES = {"icon-192.png": (192, 1.0, "transparent"), "icon-512.png": (512, 1.0, "transparent"),
         "icon-maskable-512.png": (512, 0.7, BACKGROUND)}


def html(svg: bytes, size: int, share: float, background: str) -> str:
    src = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
    side = round(size * share)
    return (f"<body style='margin:0;width:{size}px;height:{size}px;display:grid;place-items:center;"
            f"background:{background}'><img src='{src}' width='{side}' height='{side}'></body>")


def main() -> int:
    svg = (ICONS / "icon.svg").read_bytes()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for name, (size, share, background) in SIZES.items():
            page = browser.new_page(viewport={"width": size, "height": size})
            page.set_content(html(svg, size, share, background))
            page.screenshot(path=str(ICONS / name), omit_background=True)
            print(f"{name}: {(ICONS / name).stat().st_size} bytes")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
