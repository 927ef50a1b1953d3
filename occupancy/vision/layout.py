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
    """A parsed PKLot XML file: the layout and the labels it holds."""

    layout: Layout
    labels: Labels


def _points(raw: Iterable[Any], where: str) -> tuple[Point, ...]:
    try:
        points = tuple((float(p[0]), float(p[1])) for p in raw)
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise LayoutError(f"{where}: points must be [x, y] pairs") from exc
    if len(points) < 3:
        raise LayoutError(f"{where}: a polygon needs at least 3 points")
    return points


def _pklot_space(element: ET.Element) -> tuple[Space, bool | None]:
    space_id = element.get("id", "").strip()
    contour = element.find("contour")
    if contour is None:
        raise LayoutError(f"PKLot space {space_id!r} has no <contour>")
    raw = [(p.get("x"), p.get("y")) for p in contour.iter("point")]
    space = Space(space_id, _points(raw, f"PKLot space {space_id!r}"))
    occupied = element.get("occupied")
    label = None if occupied is None else occupied.strip() == "1"
    return space, label


def parse_pklot_xml(text: str) -> PklotAnnotation:
    """Parse a PKLot XML document into a layout and its labels.

    Spaces whose ``occupied`` attribute is missing (some PKLot files have
    them) are in the layout but not in the labels.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise LayoutError(f"not a PKLot XML document: {exc}") from exc
    spaces: list[Space] = []
    labels: dict[str, bool] = {}
    for element in root.iter("space"):
        space, label = _pklot_space(element)
        spaces.append(space)
        if label is not None:
            labels[space.id] = label
    if not spaces:
        raise LayoutError("PKLot XML has no <space> elements")
    return PklotAnnotation(Layout(tuple(spaces), device_id=root.get("id")), labels)


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
