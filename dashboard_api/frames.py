"""A camera's latest frame, for the layout editor to draw its polygons on.

How this works: an operator (or ``parkbazaar layout frame`` on the gateway)
PUTs one JPEG or PNG image; ``sniff`` reads its type and pixel size from the
first bytes (the PNG header chunk, or the JPEG start-of-frame segment) without
decoding it — no image library in the API, and a body that is not a picture,
or claims another type than it is, is refused naming what was wrong. One frame
per camera is kept (``device_frames``, replaced by each upload): the editor
needs the latest view, not a video archive.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dashboard_api import BadInput, NotFound
from dashboard_api.auth import Principal
from dashboard_api.registry import audit

MAX_FRAME_BYTES = 4 * 1024 * 1024  # a 1920×1080 JPEG is a few hundred KiB
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # markers without a length


@dataclass(frozen=True, slots=True)
class Picture:
    content_type: str
    width: int
    height: int


def sniff(data: bytes) -> Picture:
    """The type and size of a JPEG or PNG image from its header (pure); ``BadInput`` else."""
    if data.startswith(PNG_SIGNATURE):
        return _png(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    raise BadInput("the frame is not a JPEG or PNG image")


def _png(data: bytes) -> Picture:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise BadInput("the frame is a truncated PNG image (no header chunk)")
    width, height = struct.unpack(">II", data[16:24])
    return _sized("image/png", width, height)


def _jpeg(data: bytes) -> Picture:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if marker in _SOF and at + 9 <= len(data):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return _sized("image/jpeg", width, height)
        if marker == 0xDA or length < 2:  # the image data starts before any frame header
            break
        at += 2 + length
    raise BadInput("the frame is a JPEG image without a readable frame header")


def _sized(content_type: str, width: int, height: int) -> Picture:
    if not (1 <= width <= 65535 and 1 <= height <= 65535):
        raise BadInput(f"the frame's size {width}×{height} is out of range (1..65535 pixels a side)")
    return Picture(content_type, width, height)


def check_frame(data: bytes, declared: str | None) -> Picture:
    """``sniff`` and the upload rules: not empty, at most ``MAX_FRAME_BYTES``, and the
    ``Content-Type`` sent (when it names an image type) is what the bytes are."""
    if not data:
        raise BadInput("the frame is empty: send the JPEG or PNG image as the body")
    if len(data) > MAX_FRAME_BYTES:
        raise BadInput(f"the frame is {len(data)} bytes; at most {MAX_FRAME_BYTES} are kept "
                       "(scale it down or raise the JPEG compression)")
    picture = sniff(data)
    kind = (declared or "").split(";")[0].strip().lower()
    if kind.startswith("image/") and kind != picture.content_type:
        raise BadInput(f"the frame was sent as {kind} but is {picture.content_type}")
    return picture


async def put_frame(con: asyncpg.Connection, who: Principal, tenant: str, target: str,
                    device_id: int, data: bytes, picture: Picture) -> datetime:
    """Store the camera's frame (replacing the one before) and audit it; returns its time."""
    async with con.transaction():
        at: datetime = await con.fetchval(
            """INSERT INTO device_frames (device_id, content_type, width, height, image, actor)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (device_id) DO UPDATE SET content_type = EXCLUDED.content_type,
                 width = EXCLUDED.width, height = EXCLUDED.height, image = EXCLUDED.image,
                 at = now(), actor = EXCLUDED.actor
               RETURNING at""",
            device_id, picture.content_type, picture.width, picture.height, data, who.actor)
        await audit(con, who, tenant, "device.frame", target,
                    {"bytes": len(data), "width": picture.width, "height": picture.height,
                     "content_type": picture.content_type})
    return at


async def get_frame(con: asyncpg.Connection, device_id: int, what: str) -> asyncpg.Record:
    """The camera's frame row (``content_type``, ``width``, ``height``, ``image``, ``at``)."""
    row = await con.fetchrow(
        "SELECT content_type, width, height, image, at FROM device_frames WHERE device_id = $1", device_id)
    if row is None:
        raise NotFound(f"no frame of {what} yet: upload one (PUT …/frame, or "
                       "`parkbazaar layout frame` on the gateway)")
    return row
