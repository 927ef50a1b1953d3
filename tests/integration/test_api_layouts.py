"""A camera's layout and frame over the operators' API: every save a numbered version
(who, when, from what), the version a save was edited from checked, imports versioned
too, the latest frame stored and served, every write audited."""

from __future__ import annotations

import cv2
import numpy as np

from tests.support.api import TENANT, app_for, asgi_client, seed_city, token

BASE = f"/v1/admin/{TENANT}/sites/lot-a/devices"
SQUARE = [[10, 10], [50, 10], [50, 40], [10, 40]]
SITE_YAML = """sites:
  - id: lot-a
    devices:
      - id: cam-1
        kind: camera
        spaces:
          a3: [[1, 1], [9, 1], [9, 9]]
"""


async def test_layout_versions_frame_and_audit(database: str) -> None:
    await seed_city(database)
    auth = {"Authorization": f"Bearer {await token(database, TENANT, 'admin')}"}
    async with asgi_client(app_for(database)) as c:
        r = await c.post(BASE, headers=auth, json={"id": "cam-1", "kind": "camera", "spaces": {"a1": SQUARE}})
        assert r.status_code == 201, r.text
        assert (await c.get(f"{BASE}/cam-1/layout", headers=auth)).json() == {
            "device": "cam-1", "site": "lot-a", "version": 1, "spaces": {"a1": SQUARE}}

        # the editor saves from version 1; a save from a stale version is refused, not merged
        moved = {"a1": [[12, 10], [52, 10], [52, 40], [12, 40]], "a2": SQUARE}
        r = await c.put(f"{BASE}/cam-1/layout", headers=auth, json={"spaces": moved, "base": 1})
        assert r.status_code == 200 and r.json() == {"device": "cam-1", "version": 2, "spaces": 2}, r.text
        r = await c.put(f"{BASE}/cam-1/layout", headers=auth, json={"spaces": moved, "base": 1})
        assert r.status_code == 409 and "version 2 now, not 1" in r.json()["detail"]
        assert (await c.get(f"{BASE}/cam-1/layout", headers=auth)).json()["spaces"] == moved

        # an import is a version too (a site file's camera of the same id)
        r = await c.put(f"{BASE}/cam-1/polygons", params={"format": "site"},
                        headers={**auth, "content-type": "text/plain"}, content=SITE_YAML)
        assert r.status_code == 200 and r.json()["version"] == "3", r.text
        listed = (await c.get(f"{BASE}/cam-1/layouts", headers=auth)).json()
        assert [(v["version"], v["source"], v["spaces"]) for v in listed] == [
            (3, "site", 1), (2, "editor", 2), (1, "api", 1)]
        assert all(v["actor"].startswith("token:") for v in listed)
        old = (await c.get(f"{BASE}/cam-1/layouts/2", headers=auth)).json()
        assert old["spaces"] == moved and old["source"] == "editor"
        assert (await c.get(f"{BASE}/cam-1/layouts/9", headers=auth)).status_code == 404

        # bad layouts: a space the site lacks, too few points, a sensor
        r = await c.put(f"{BASE}/cam-1/layout", headers=auth, json={"spaces": {"zz": SQUARE}})
        assert r.status_code == 404 and "zz" in r.json()["detail"]
        r = await c.put(f"{BASE}/cam-1/layout", headers=auth, json={"spaces": {"a1": SQUARE[:2]}})
        assert r.status_code == 422
        r = await c.put(f"{BASE}/s-a1/layout", headers=auth, json={"spaces": {"a1": SQUARE}})
        assert r.status_code == 422 and "not a camera" in r.text
        assert (await c.get(f"{BASE}/cam-1/layouts", headers=auth)).json()[0]["version"] == 3

        # the frame: none yet, then the uploaded image back, refused when it is not one
        assert (await c.get(f"{BASE}/cam-1/frame", headers=auth)).status_code == 404
        png = cv2.imencode(".png", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
        r = await c.put(f"{BASE}/cam-1/frame", headers={**auth, "content-type": "image/png"}, content=png)
        assert r.status_code == 200 and (r.json()["width"], r.json()["height"]) == (64, 48), r.text
        r = await c.get(f"{BASE}/cam-1/frame", headers=auth)
        assert r.content == png and r.headers["content-type"] == "image/png"
        assert r.headers["x-frame-width"] == "64" and r.headers["cache-control"] == "no-store"
        r = await c.put(f"{BASE}/cam-1/frame", headers={**auth, "content-type": "image/jpeg"}, content=png)
        assert r.status_code == 422 and "sent as image/jpeg but is image/png" in r.text
        r = await c.put(f"{BASE}/cam-1/frame", headers=auth, content=b"GIF89a....")
        assert r.status_code == 422 and "not a JPEG or PNG" in r.text
        assert (await c.get(f"{BASE}/cam-1/frame")).status_code == 401

        audit = (await c.get(f"/v1/admin/{TENANT}/audit", headers=auth)).json()
        actions = [(a["action"], a["detail"].get("layout_version"))
                   for a in audit if a["target"] == "lot-a/cam-1"]
        assert actions == [("device.frame", None), ("device.update", 3), ("device.update", 2),
                           ("device.create", 1)]


async def test_the_editor_page_has_its_own_policy(database: str) -> None:
    async with asgi_client(app_for(database)) as c:
        r = await c.get("/admin/layout")
        assert r.status_code == 200 and 'src="/static/editor.js"' in r.text
        policy = r.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "img-src 'self' blob:;" in policy
        assert (await c.get("/static/editor.js")).status_code == 200
