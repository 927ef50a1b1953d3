"""Camera layouts: which polygon of the image is which space.

Three sources, all parsed from text or already-loaded data (pure):

- PKLot XML (``<parking><space id occupied><contour><point x y/>…``), which
  also carries ground-truth labels, returned separately for evaluation;
- the ``bounding_boxes.json`` of Ultralytics' parking points tool
  (``[{"points": [[x, y], …]}, …]``; ids ``1``, ``2``, … in file order);
- the project's site file: a camera device of a site lists its spaces with
  polygons (``devices: [{id, kind: camera, spaces: {A-001: [[x, y], …]}}]``).

:func:`load_layout` is the one helper that reads a file; it sniffs the format
from the suffix.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from occupancy.vision.errors import LayoutError

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Space:
    """One space (bay or stall) of a camera: an id and its image polygon."""

    id: str
    polygon: tuple[Point, ...]

    def __post_init__(self) -> None:
        if not self.id:
            raise LayoutError("a space needs a non-empty id")
        if len(self.polygon) < 3:
            raise LayoutError(f"space {self.id!r}: a polygon needs at least 3 points")


@dataclass(frozen=True, slots=True)
class Layout:
    """The spaces one camera watches, in a stable order, ids unique."""

    spaces: tuple[Space, ...]
    device_id: str | None = None
    site_id: str | None = None

    def __post_init__(self) -> None:
        ids = [space.id for space in self.spaces]
        if len(set(ids)) != len(ids):
            raise LayoutError("space ids in a layout must be unique")

    @property
    def ids(self) -> tuple[str, ...]:
        """The space ids in layout order."""
        return tuple(space.id for space in self.spaces)


Labels = Mapping[str, bool]
"""Ground truth: space id → occupied. Spaces without a label are absent."""


@dataclass(frozen=True, slots=True)
class PklotAnnotation:
    """A parsed PKLot XML file: the layout, the labels it holds, and what was set aside.

    ``notes`` name what a lenient parse repaired or skipped (a renamed
    duplicate id, a space without a usable shape, an unreadable label).
    """

    layout: Layout
    labels: Labels
    notes: tuple[str, ...] = ()


def _points(raw: Iterable[Any], where: str) -> tuple[Point, ...]:
    try:
        points = tuple((float(p[0]), float(p[1])) for p in raw)
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise LayoutError(f"{where}: points must be [x, y] pairs") from exc
    if len(points) < 3:
        raise LayoutError(f"{where}: a polygon needs at least 3 points")
    return points


# ---- PKLot XML ----------------------------------------------------------------
#
# PKLot's files are not uniform across lots: tags and attributes in either case
# (``<point>`` / ``<Point>``), spaces with only a ``<rotatedRect>`` or only a
# ``<contour>``, contours of two corners (an axis-aligned box), ids that are any
# integers (with gaps, not from 1, now and then twice in one file), spaces
# without ``occupied``. The parser takes the contour when it has three usable
# points or more, else a two-point box, else the rotated rectangle.

_TRUE = frozenset({"1", "true", "yes", "occupied"})
_FALSE = frozenset({"0", "false", "no", "free", "empty"})


def _children(element: ET.Element, tag: str) -> list[ET.Element]:
    return [child for child in element.iter() if child.tag.lower() == tag and child is not element]


def _attr(element: ET.Element, name: str) -> str | None:
    for key, value in element.attrib.items():
        if key.lower() == name:
            return value
    return None


def _number(element: ET.Element | None, name: str) -> float | None:
    raw = None if element is None else _attr(element, name)
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _contour_points(element: ET.Element) -> list[Point]:
    points = []
    for contour in _children(element, "contour")[:1]:
        for point in _children(contour, "point"):
            x, y = _number(point, "x"), _number(point, "y")
            if x is not None and y is not None:
                points.append((x, y))
    return points


def _box(a: Point, b: Point) -> tuple[Point, ...]:
    (x0, y0), (x1, y1) = a, b
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def _first(element: ET.Element, tag: str) -> ET.Element | None:
    found = _children(element, tag)
    return found[0] if found else None


def _rotated_rect(element: ET.Element) -> tuple[Point, ...] | None:
    """The four corners of a ``<rotatedRect>`` (OpenCV's convention: ``w`` along ``angle``)."""
    rect = _first(element, "rotatedrect")
    if rect is None:
        return None
    center, size = _first(rect, "center"), _first(rect, "size")
    cx, cy, w, h = (_number(center, "x"), _number(center, "y"), _number(size, "w"), _number(size, "h"))
    if cx is None or cy is None or w is None or h is None:
        return None
    theta = math.radians(_number(_first(rect, "angle"), "d") or 0.0)
    ux, uy = math.cos(theta) * w / 2, math.sin(theta) * w / 2  # half the width, along the angle
    vx, vy = -math.sin(theta) * h / 2, math.cos(theta) * h / 2  # half the height, across it
    corners = ((-1, -1), (1, -1), (1, 1), (-1, 1))
    return tuple((cx + a * ux + b * vx, cy + a * uy + b * vy) for a, b in corners)


def _pklot_polygon(element: ET.Element) -> tuple[Point, ...] | None:
    points = _contour_points(element)
    if len(set(points)) >= 3:
        return tuple(points)
    if len(set(points)) == 2:
        return _box(points[0], points[-1])
    return _rotated_rect(element)


def _pklot_label(element: ET.Element) -> bool | None:
    raw = _attr(element, "occupied")
    value = None if raw is None else raw.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def parse_pklot_xml(text: str | bytes, lenient: bool = False) -> PklotAnnotation:
    """Parse a PKLot XML document into a layout and its labels.

    Spaces whose ``occupied`` attribute is missing (some PKLot files have
    them) are in the layout but not in the labels. Strict (the default, for
    a camera's layout): a space without a usable shape or an id used twice
    is a :class:`LayoutError`. ``lenient`` (for scoring PKLot trees): such a
    space is skipped, a repeated or empty id is renamed (``12#2``, ``#5``),
    and each repair is named in ``notes``. No usable space at all is an
    error either way.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise LayoutError(f"not a PKLot XML document: {exc}") from exc
    spaces: list[Space] = []
    labels: dict[str, bool] = {}
    notes: list[str] = []
    elements = [root] if root.tag.lower() == "space" else _children(root, "space")
    for index, element in enumerate(elements, start=1):
        space_id = (_attr(element, "id") or "").strip()
        polygon = _pklot_polygon(element)
        problem = _space_problem(space_id, polygon, {s.id for s in spaces})
        if problem and not lenient:
            raise LayoutError(f"PKLot space {space_id!r}: {problem}")
        if polygon is None:
            notes.append(f"space {space_id or index}: {problem}, skipped")
            continue
        if problem:
            renamed = _unique(space_id or f"#{index}", {s.id for s in spaces})
            notes.append(f"space {space_id or index}: {problem}, renamed {renamed!r}")
            space_id = renamed
        spaces.append(Space(space_id, polygon))
        label = _pklot_label(element)
        if label is not None:
            labels[space_id] = label
        elif _attr(element, "occupied") is not None:
            notes.append(f"space {space_id}: occupied={_attr(element, 'occupied')!r} is not 0/1, unlabelled")
    if not spaces:
        raise LayoutError("PKLot XML has no usable <space> elements")
    return PklotAnnotation(Layout(tuple(spaces), device_id=_attr(root, "id")), labels, tuple(notes))


def _space_problem(space_id: str, polygon: tuple[Point, ...] | None, taken: set[str]) -> str | None:
    if polygon is None:
        return "no usable <contour> or <rotatedRect>"
    if not space_id:
        return "no id"
    if space_id in taken:
        return "id used twice"
    return None


def _unique(space_id: str, taken: set[str]) -> str:
    if space_id not in taken:
        return space_id
    n = 2
    while f"{space_id}#{n}" in taken:
        n += 1
    return f"{space_id}#{n}"


def layout_from_bounding_boxes(data: Any) -> Layout:
    """Build a layout from Ultralytics' ``bounding_boxes.json`` (already loaded).

    The file is a list of ``{"points": [[x, y] × 4]}``; spaces are numbered
    ``1``, ``2``, … in file order.
    """
    if not isinstance(data, list) or not data:
        raise LayoutError("bounding_boxes.json must be a non-empty list")
    spaces = []
    for index, entry in enumerate(data, start=1):
        if not isinstance(entry, dict) or "points" not in entry:
            raise LayoutError(f"bounding box {index} has no 'points'")
        spaces.append(Space(str(index), _points(entry["points"], f"bounding box {index}")))
    return Layout(tuple(spaces))


def _find_device(site_file: Mapping[str, Any], device_id: str) -> tuple[str, Mapping[str, Any]]:
    for site in site_file.get("sites") or []:
        for device in site.get("devices") or []:
            if str(device.get("id")) == device_id:
                return str(site.get("id")), device
    raise LayoutError(f"no device {device_id!r} in the site file")


def layout_from_site_device(site_file: Mapping[str, Any], device_id: str) -> Layout:
    """Build the layout of camera ``device_id`` from a loaded site file dict."""
    if not isinstance(site_file, Mapping):
        raise LayoutError("a site file must be a mapping")
    site_id, device = _find_device(site_file, device_id)
    if device.get("kind", "camera") != "camera":
        raise LayoutError(f"device {device_id!r} is a {device.get('kind')!r}, not a camera")
    raw = device.get("spaces")
    if not isinstance(raw, Mapping) or not raw:
        raise LayoutError(f"camera {device_id!r} lists no spaces with polygons")
    spaces = tuple(
        Space(str(space_id), _points(points, f"{device_id}/{space_id}")) for space_id, points in raw.items()
    )
    return Layout(spaces, device_id=device_id, site_id=site_id)


def load_layout(path: Path | str, device_id: str | None = None) -> Layout:
    """Read a layout file: ``.xml`` (PKLot), ``.json`` (bounding boxes), ``.yaml``/``.yml``.

    A site file needs ``device_id``, the camera whose spaces to take.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LayoutError(f"cannot read layout {path}: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return parse_pklot_xml(text).layout
    if suffix == ".json":
        return layout_from_bounding_boxes(_load(json.loads, text, path))
    if suffix in (".yaml", ".yml"):
        if device_id is None:
            raise LayoutError("a site file layout needs the camera's device id")
        return layout_from_site_device(_load(yaml.safe_load, text, path), device_id)
    raise LayoutError(f"unknown layout format {suffix!r} (want .xml, .json, .yaml)")


def _load(loader: Any, text: str, path: Path) -> Any:
    try:
        return loader(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise LayoutError(f"cannot parse {path}: {exc}") from exc


def site_file_text(site: str, device: str, layout: dict[str, Any], api: str) -> str:
    """The layout file ``pull`` writes: a site file with this camera and its polygons ."""
    data = {"sites": [{"id": site, "devices": [
        {"id": device, "kind": "camera", "spaces": layout["spaces"]}]}]}
    head = (f"# written by `parkbazaar layout pull` from {api}: camera {device}, "
            f"layout version {layout.get('version')}\n")
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
