"""``parkbazaar layout pull|frame --api URL --tenant T --site S --device CAM``: a camera's
layout and frame between the gateway's machine and the layout editor (``/admin/layout``).

``pull --out FILE`` fetches the camera's polygons in force (``GET …/devices/{cam}/layout``)
and writes them as a site file (``.yaml``: ``sites[].devices[]`` with that camera
alone) — atomically, and only when they changed. A gateway whose camera has
``layout: FILE`` reads the file again before its next frame
(``gateway.adapters.layout_watch``). Run it after a save, or every minute from
cron or a systemd timer: the gateway process itself never holds an admin token.
It needs no gateway config, so it also writes the first layout of a new camera.
``frame --source SRC`` reads one frame (an image, a folder's first image, a
video file or a stream URL, as the gateway config's ``source``) and uploads it
as a JPEG (``PUT …/devices/{cam}/frame``) for the editor to draw on.

The admin token comes from ``--token-file`` or ``PARKBAZAAR_ADMIN_TOKEN``, never
the command line (which other users of the machine can read). Exit codes: 0
done, 1 the API refused or could not be reached, or a file failed, 2 a bad argument.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from dashboard_api.frames import MAX_FRAME_BYTES
from occupancy.vision.layout import site_file_text
from parkbazaar.clikit import fail

TOKEN_ENV = "PARKBAZAAR_ADMIN_TOKEN"
TIMEOUT_S = 30.0
SITE_FILE_SUFFIXES = (".yaml", ".yml")
JPEG_QUALITY = (90, 75, 60, 45)  # tried in turn until the frame fits the API's limit


class CliError(Exception):
    """What ends the command: the message and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("layout", help="a camera's layout and frame, from/to the API's layout editor")
    sub = p.add_subparsers(dest="layout_command", metavar="ACTION", required=True)
    pull = sub.add_parser("pull", help="write a camera's layout file from the API's layout in force")
    pull.add_argument("--out", type=Path, required=True, metavar="FILE",
                      help="the camera's layout file (.yaml), as its gateway config names it")
    frame = sub.add_parser("frame", help="upload one frame of a camera for the layout editor")
    frame.add_argument("--source", required=True, metavar="SRC",
                       help="an image, a folder of images, a video file or a stream URL")
    for s in (pull, frame):
        s.add_argument("--api", required=True, metavar="URL", help="the API, e.g. https://api.example")
        s.add_argument("--tenant", required=True)
        s.add_argument("--site", required=True)
        s.add_argument("--device", required=True, metavar="CAM", help="the camera's device id")
        s.add_argument("--token-file", type=Path, metavar="FILE",
                       help=f"a file holding an admin token (default: ${TOKEN_ENV})")
    pull.set_defaults(func=cmd_pull)
    frame.set_defaults(func=cmd_frame)




# --- I/O -------------------------------------------------------------------------------------------

def _token(args: argparse.Namespace) -> str:
    if args.token_file is not None:
        try:
            return Path(args.token_file).read_text("utf-8").strip()
        except OSError as exc:
            raise CliError(f"cannot read the token file: {exc}", 2) from exc
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise CliError(f"no admin token: give --token-file or set {TOKEN_ENV}", 2)
    return token


def _request(method: str, url: str, token: str, body: bytes | None = None,
             content_type: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise CliError(f"{method} {url}: HTTP {exc.code}: {_detail(exc.read())}", 1) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CliError(f"{method} {url}: {exc}", 1) from exc


def _detail(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace")
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in detail)
    return str(detail)


def device_url(args: argparse.Namespace) -> str:
    """The camera's admin URL (pure)."""
    quote = urllib.parse.quote
    return (f"{args.api.rstrip('/')}/v1/admin/{quote(args.tenant, safe='')}/sites/"
            f"{quote(args.site, safe='')}/devices/{quote(args.device, safe='')}")


def _write(path: Path, text: str) -> bool:
    """Replace the file atomically if its text differs; whether it did."""
    try:
        if path.read_text("utf-8") == text:
            return False
    except OSError:
        pass
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, "utf-8")
    os.replace(temporary, path)
    return True


def pull(args: argparse.Namespace, token: str) -> str:
    """Write the camera's layout file; the line that says what happened."""
    path: Path = args.out
    if path.suffix.lower() not in SITE_FILE_SUFFIXES:
        raise CliError(f"--out {path}: pull writes a site file, so its name must end in .yaml", 2)
    layout = _request("GET", f"{device_url(args)}/layout", token)
    if not layout.get("spaces"):
        return f"{args.device}: the API has no polygons for it yet; {path} left as it is"
    try:
        written = _write(path, site_file_text(args.site, args.device, layout, args.api))
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}", 1) from exc
    what = "written" if written else "unchanged"
    return (f"{args.device}: layout version {layout.get('version')}, {len(layout['spaces'])} spaces, "
            f"{path} {what}")


def _jpeg(frame: Any) -> bytes:
    import cv2

    for quality in JPEG_QUALITY:
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(data) <= MAX_FRAME_BYTES:
            return bytes(data.tobytes())
    raise CliError(f"the frame does not fit in {MAX_FRAME_BYTES} bytes as a JPEG", 1)


def _first_frame(source: str) -> Any:
    from gateway.camera import IMAGE_SUFFIXES, CameraError, CaptureFrames, FileFrames, folder_frames

    path = Path(source)
    frames = (folder_frames(path) if "://" not in source and path.is_dir()
              else FileFrames([path]) if path.suffix.lower() in IMAGE_SUFFIXES
              else CaptureFrames(source, live=True))
    try:
        return next(iter(frames))[1]
    except StopIteration as exc:
        raise CliError(f"{source}: no frame in it", 1) from exc
    except (CameraError, OSError) as exc:
        raise CliError(str(exc), 1) from exc


def upload_frame(args: argparse.Namespace, token: str) -> str:
    """Read one frame of the source and upload it; the line that says so."""
    answer = _request("PUT", f"{device_url(args)}/frame", token, _jpeg(_first_frame(args.source)),
                      "image/jpeg")
    return f"{args.device}: frame {answer['width']}×{answer['height']} uploaded ({answer['bytes']} bytes)"


def _run(args: argparse.Namespace, work: Any) -> int:
    try:
        print(work(args, _token(args)))
    except CliError as exc:
        return fail("layout", exc, exc.code)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    return _run(args, pull)


def cmd_frame(args: argparse.Namespace) -> int:
    return _run(args, upload_frame)
