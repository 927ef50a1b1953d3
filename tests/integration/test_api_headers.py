"""Security headers on the page and on every answer; the docs pages' assets come from the
installed package (no CDN), run under a policy that lets no other script in, or are off."""

from __future__ import annotations

import re

from tests.support.api import TENANT, app_for, asgi_client, seed_city

ALWAYS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def _csp(value: str) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in value.split("; ")}


async def test_page_has_csp_nosniff_and_frame_policy(database: str) -> None:
    await seed_city(database)
    async with asgi_client(app_for(database, tile_url="https://{s}.tiles.example/{z}/{x}/{y}.png")) as c:
        r = await c.get("/")
    assert r.status_code == 200
    assert {k: r.headers[k] for k in ALWAYS} == ALWAYS
    csp = _csp(r.headers["content-security-policy"])
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"  # no inline script or style
    assert csp["frame-ancestors"] == "'none'" and csp["connect-src"] == "'self'"
    assert csp["img-src"] == "'self' data: https://*.tiles.example"


async def test_page_loads_nothing_from_another_origin_and_is_installable(database: str) -> None:
    async with asgi_client(app_for(database)) as c:
        page = await c.get("/")
        assert _csp(page.headers["content-security-policy"])["img-src"] == "'self'"  # no tile server
        sources = [s for s in re.findall(r'(?:src|href)="([^"]+)"', page.text) if s != "#"]
        assert sources and all(s.startswith("/") for s in sources), sources
        for source in sources:
            assert (await c.get(source)).status_code == 200, source
        manifest = await c.get("/manifest.webmanifest")
        assert manifest.headers["content-type"] == "application/manifest+json"
        for icon in manifest.json()["icons"]:
            assert (await c.get(icon["src"])).status_code == 200, icon
        worker = await c.get("/sw.js")
        assert worker.headers["content-type"].startswith("text/javascript")
        assert worker.headers["content-security-policy"] == "default-src 'none'; connect-src 'self'"
        assert worker.headers["cache-control"] == "no-cache"


async def test_every_answer_has_the_security_headers(database: str) -> None:
    await seed_city(database)
    async with asgi_client(app_for(database)) as c:
        for path in ("/v1/sites", f"/v1/sites/{TENANT}/lot-a", "/v1/sites/nope/nope", "/metrics",
                     "/static/app.js", "/openapi.json", f"/v1/manage/{TENANT}/alerts"):
            r = await c.get(path)
            assert {k: r.headers.get(k) for k in ALWAYS} == ALWAYS, path
            if path != "/static/app.js":
                assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_docs_load_no_asset_from_another_origin(database: str) -> None:
    async with asgi_client(app_for(database)) as c:
        for page, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")),
                             ("/redoc", ("redoc.standalone.js",))):
            r = await c.get(page)
            assert r.status_code == 200
            sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
            assert sources and all(s.startswith("/") for s in sources), sources  # this origin only
            csp = _csp(r.headers["content-security-policy"])
            assert "'unsafe-inline'" not in csp["script-src"] and csp["frame-ancestors"] == "'none'"
            for asset in assets:
                served = await c.get(f"/docs-assets/{asset}")
                assert served.status_code == 200 and len(served.content) > 100_000, asset


async def test_docs_off_by_setting(database: str) -> None:
    async with asgi_client(app_for(database, docs=False)) as c:
        assert (await c.get("/docs")).status_code == 404
        assert (await c.get("/redoc")).status_code == 404
        assert (await c.get("/openapi.json")).status_code == 200
