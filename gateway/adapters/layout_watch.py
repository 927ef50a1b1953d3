"""A camera's layout file, read again when it changes: how a running gateway picks up a
layout saved in the editor (``parkbazaar layout pull`` writes the file, atomically).

How this works: ``LayoutWatch.changed`` is asked before every frame. It compares
the file's identity (inode, modification time in ns, size) with the one it last
read — one ``stat``, no read — and only when that differs loads the layout again
with the same reader as at start (``occupancy.vision.layout.load_layout``). The
new layout is refused as a whole, and the one in use kept, when it cannot be
read or parsed, or when it names a space this camera may not report (``allowed``:
another device's, or outside the gateway's ``spaces``) — the same rules the
config applies at start. Each refusal is logged once per version of the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config import expand
from occupancy.ids import IdError, SiteId, SpaceId, SpaceRef
from occupancy.vision.errors import LayoutError
from occupancy.vision.layout import Layout, load_layout

if TYPE_CHECKING:
    from gateway.config import CameraDevice, GatewayConfig

log = logging.getLogger(__name__)

Stamp = tuple[int, int, int]
SpaceCheck = Callable[[str], str | None]  # space id → why the camera may not report it, or None


def _stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class LayoutWatch:
    """The layout file of one camera; ``changed()`` is the new layout once per change."""

    def __init__(self, path: Path, device: str, allowed: SpaceCheck) -> None:
        self.path = path
        self.device = device
        self.allowed = allowed
        self.stamp = _stamp(path)  # the file as read at start
        self.reloads = 0

    def changed(self) -> Layout | None:
        """The file's new layout if it changed since the last call and is usable, else None."""
        stamp = _stamp(self.path)
        if stamp is None or stamp == self.stamp:
            return None  # a missing file (mid-replace, or removed) keeps the layout in use
        self.stamp = stamp
        try:
            layout = load_layout(self.path, self.device)
        except LayoutError as exc:
            log.error("camera %s: layout %s not reloaded, keeping the one in use: %s",
                      self.device, self.path, exc)
            return None
        refused = [f"{s} ({why})" for s in layout.ids if (why := self.allowed(s))]
        if refused:
            log.error("camera %s: layout %s not reloaded, keeping the one in use: it names spaces this "
                      "camera may not report: %s", self.device, self.path, ", ".join(refused))
            return None
        self.reloads += 1
        log.info("camera %s: layout %s reloaded: %d spaces", self.device, self.path, len(layout.spaces))
        return layout


def space_check(config: GatewayConfig, device: CameraDevice) -> SpaceCheck:
    """The config's binding rules for a space id of ``device``'s reloaded layout: a valid
    id, no other device's space, and one of the gateway's ``spaces`` when it lists them."""
    others = {r: d.id for d in config.devices if d.id != device.id for r in d.space_refs()}
    bound = None if config.spaces is None else set(expand(config.spaces))

    def check(space: str) -> str | None:
        try:
            ref = SpaceRef(SiteId(device.site), SpaceId(space))
        except IdError as exc:
            return str(exc)
        if ref in others:
            return f"bound to device {others[ref]}"
        if bound is not None and ref not in bound:
            return "not in the gateway's spaces"
        return None

    return check
