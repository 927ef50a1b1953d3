"""Layout parsers: PKLot XML, Ultralytics bounding_boxes.json, the site file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from occupancy.vision.errors import LayoutError
from occupancy.vision.layout import (
    Layout,
    Space,
    layout_from_bounding_boxes,
    layout_from_site_device,
    load_layout,
    parse_pklot_xml,
)

PKLOT_XML = """<?xml version="1.0" ?>
<parking id="ufpr05">
  <space id="1" occupied="0">
    <rotatedRect><center x="678" y="593"/><size w="82" h="176"/><angle d="-71"/></rotatedRect>
    <contour><point x="608" y="613"/><point x="741" y="654"/>
             <point x="775" y="582"/><point x="608" y="526"/></contour>
  </space>
  <space id="2" occupied="1">
    <contour><point x="542" y="508"/><point x="671" y="539"/>
             <point x="695" y="480"/><point x="547" y="439"/></contour>
  </space>
  <space id="3">
    <contour><point x="1" y="1"/><point x="9" y="1"/><point x="9" y="5"/></contour>
  </space>
</parking>
"""

BOXES = [
    {"points": [[10, 10], [50, 10], [50, 30], [10, 30]]},
    {"points": [[60, 10], [100, 10], [100, 30], [60, 30]]},
]

SITE = {
    "tenant": {"id": "shiraz"},
    "sites": [
        {
            "id": "central-lot",
            "kind": "parking",
            "devices": [
                {"id": "s-1", "kind": "sensor", "spaces": ["A-001"]},
                {
                    "id": "cam-1",
                    "kind": "camera",
                    "spaces": {
                        "A-001": [[0, 0], [40, 0], [40, 20], [0, 20]],
                        "A-002": [[50, 0], [90, 0], [90, 20], [50, 20]],
                    },
                },
            ],
        },
    ],
}


def test_pklot_xml_gives_layout_and_labels() -> None:
    parsed = parse_pklot_xml(PKLOT_XML)
    assert parsed.layout.ids == ("1", "2", "3")
    assert parsed.layout.device_id == "ufpr05"
    assert parsed.layout.spaces[0].polygon[0] == (608.0, 613.0)
    assert dict(parsed.labels) == {"1": False, "2": True}  # space 3 has no label


def test_bounding_boxes_number_spaces_in_order() -> None:
    layout = layout_from_bounding_boxes(BOXES)
    assert layout.ids == ("1", "2")
    assert layout.spaces[1].polygon[2] == (100.0, 30.0)


def test_site_device_layout() -> None:
    layout = layout_from_site_device(SITE, "cam-1")
    assert layout.ids == ("A-001", "A-002")
    assert (layout.site_id, layout.device_id) == ("central-lot", "cam-1")


@pytest.mark.parametrize(
    ("device", "message"),
    [("cam-9", "no device"), ("s-1", "not a camera")],
)
def test_site_device_errors(device: str, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        layout_from_site_device(SITE, device)


def test_load_layout_sniffs_all_three_formats(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(PKLOT_XML)
    (tmp_path / "bounding_boxes.json").write_text(json.dumps(BOXES))
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(SITE))
    assert len(load_layout(tmp_path / "a.xml").spaces) == 3
    assert len(load_layout(tmp_path / "bounding_boxes.json").spaces) == 2
    assert load_layout(tmp_path / "site.yaml", "cam-1").ids == ("A-001", "A-002")
    with pytest.raises(LayoutError, match="device id"):
        load_layout(tmp_path / "site.yaml")


@pytest.mark.parametrize(
    "bad",
    ["<parking/>", "not xml", '<parking><space id="1"/></parking>'],
)
def test_bad_pklot_xml(bad: str) -> None:
    with pytest.raises(LayoutError):
        parse_pklot_xml(bad)


def test_layout_values_check_themselves() -> None:
    square = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0))
    with pytest.raises(LayoutError):
        Space("x", ((0.0, 0.0), (1.0, 1.0)))
    with pytest.raises(LayoutError):
        Layout((Space("a", square), Space("a", square)))
    with pytest.raises(LayoutError):
        layout_from_bounding_boxes([{"points": [[1, "x"], [2, 2], [3, 3]]}])


# Other PKLot lots are not uniform: capitalised tags, rotatedRect-only spaces,
# two-corner boxes, ids that are any integers (gaps, repeats), odd labels.
ODD_PKLOT = """<?xml version="1.0" encoding="utf-8"?>
<parking id="pucpr">
  <space id="107" occupied="1">
    <rotatedRect><center x="300" y="200"/><size w="40" h="20"/><angle d="90"/></rotatedRect>
  </space>
  <space id="9" occupied="0">
    <Contour><Point x="10" y="10"/><Point x="30" y="22"/></Contour>
  </space>
  <space id="9" occupied="true">
    <contour><point x="50" y="10"/><point x="60" y="10"/>
             <point x="60" y="14"/><point x="50" y="14"/></contour>
  </space>
  <space id="" occupied="maybe">
    <contour><point x="70" y="10"/><point x="80" y="10"/><point x="80" y="14"/></contour>
  </space>
  <space id="12" occupied="0"><contour><point x="1" y="1"/></contour></space>
</parking>
"""


def test_lenient_pklot_parse_repairs_and_names_what_it_did() -> None:
    parsed = parse_pklot_xml(ODD_PKLOT.encode(), lenient=True)
    assert parsed.layout.ids == ("107", "9", "9#2", "#4")
    # rotatedRect only: w along the angle (90°), so the box is 20 wide and 40 high around the centre
    xs, ys = zip(*parsed.layout.spaces[0].polygon, strict=True)
    assert (min(xs), max(xs), min(ys), max(ys)) == pytest.approx((290, 310, 180, 220))
    assert parsed.layout.spaces[1].polygon == ((10, 10), (30, 10), (30, 22), (10, 22))  # two corners: a box
    assert parsed.labels == {"107": True, "9": False, "9#2": True}
    assert len(parsed.notes) == 4  # renamed twice, one unreadable label, one space without a shape
    assert any("12" in n and "skipped" in n for n in parsed.notes)


def test_strict_pklot_parse_refuses_what_lenient_repairs() -> None:
    with pytest.raises(LayoutError, match="used twice"):
        parse_pklot_xml(ODD_PKLOT)
