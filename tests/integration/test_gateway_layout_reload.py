"""The gateway picks up a camera layout saved in the editor: ``parkbazaar layout pull``
rewrites the camera's layout file, and the running gateway (real camera adapter and
detector, real Mosquitto) reports the new space from its next frame on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from occupancy.vision.layout import site_file_text
from occupancy.wire import decode_events
from stack.embedded import Mosquitto
from tests.support.gateways import config_dict, make_config, running_gateway
from tests.support.mqtt import Subscriber
from tests.support.registry import SITE
from tests.support.waiting import wait_until

pytestmark = pytest.mark.mosquitto
BAY_1 = [[10, 10], [90, 10], [90, 60], [10, 60]]
BAY_2 = [[110, 10], [190, 10], [190, 60], [110, 60]]


def reported(sub: Subscriber) -> set[str]:
    return {str(e.space) for topic, payload, _ in sub.received() if topic.endswith("/events")
            for e in decode_events(payload).events}


async def test_a_running_gateway_reads_a_changed_layout_file(broker: Mosquitto, topic_prefix: str,
                                                             tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "f.png"), np.full((100, 200, 3), 120, np.uint8))
    layout = tmp_path / "cam-1.yaml"
    layout.write_text(site_file_text(SITE, "cam-1", {"version": 1, "spaces": {"A-1": BAY_1}}, "test"))
    camera = {"id": "cam-1", "kind": "camera", "source": "frames", "layout": "cam-1.yaml", "site": SITE,
              "poll_s": 0.05}
    config = make_config(config_dict(broker.url, topic_prefix, tmp_path / "state", [camera]), tmp_path)
    sub = Subscriber(broker.url, topic_prefix)
    try:
        async with running_gateway(config) as (service, _):
            await wait_until(lambda: _has(sub, f"{SITE}/A-1"), 20, "A-1 reported")
            assert f"{SITE}/A-2" not in reported(sub)
            layout.write_text(site_file_text(SITE, "cam-1", {"version": 2, "spaces": {
                "A-1": BAY_1, "A-2": BAY_2}}, "test"))
            await wait_until(lambda: _has(sub, f"{SITE}/A-2"), 20, "A-2 reported after the layout changed")
            assert [d.spaces for d in service.health().devices] == [2]
    finally:
        sub.close()


async def _has(sub: Subscriber, space: str) -> bool:
    return space in reported(sub)
