"""``parkbazaar lorawan``: what a LoRaWAN parking sensor's frame says.

    parkbazaar lorawan decode --device MODEL --fport N HEX [--json]
    parkbazaar lorawan models

``decode`` prints the decoded frame (``occupancy/lorawan``); with ``--json``
one JSON object with ``occupied`` (``true``, ``false`` or ``null`` when the
frame says nothing about occupancy) beside the other fields. Bad hex, an
unknown model, a port the model does not use or a short frame: a message on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from occupancy.lorawan import LorawanError
from occupancy.lorawan.models import decode, names, registry

_SEPARATORS = re.compile(r"[\s:]")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("lorawan", help="decode LoRaWAN parking sensor frames")
    sub = p.add_subparsers(dest="lorawan_command", metavar="ACTION", required=True)
    d = sub.add_parser("decode", help="decode one frame (FRMPayload as hex)")
    d.add_argument("--device", required=True, metavar="MODEL",
                   help="device model (see `parkbazaar lorawan models`)")
    d.add_argument("--fport", required=True, type=int, metavar="N", help="the uplink's fPort")
    d.add_argument("hex", metavar="HEX", help="the frame's bytes in hex, e.g. 01 or 0x0a1b")
    d.add_argument("--json", action="store_true", help="one JSON object on stdout")
    d.set_defaults(func=cmd_decode)
    m = sub.add_parser("models", help="list the supported device models")
    m.set_defaults(func=cmd_models)


def parse_hex(text: str) -> bytes:
    """The bytes of ``text`` (optional ``0x``, spaces or colons between bytes); ValueError."""
    raw = _SEPARATORS.sub("", text)
    if raw[:2].lower() == "0x":
        raw = raw[2:]
    if not raw:
        raise ValueError("the frame is empty")
    if len(raw) % 2:
        raise ValueError(f"{text!r} has an odd number of hex digits")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not hex (digits 0-9, a-f)") from None


def cmd_decode(args: argparse.Namespace) -> int:
    try:
        payload = parse_hex(args.hex)
        if not 0 <= args.fport <= 255:
            raise ValueError(f"fPort {args.fport} is not 0..255")
        frame = decode(args.device, args.fport, payload)
    except (ValueError, LorawanError) as exc:
        print(f"parkbazaar lorawan decode: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(frame.to_json(), ensure_ascii=False, sort_keys=False))
        return 0
    for key, value in frame.to_json().items():
        print(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    for name in names():
        m = registry()[name]
        ports = ",".join(str(p) for p in sorted(m.ports))
        print(f"{name:22} {m.vendor}: {m.description} (fPorts {ports})")
    return 0
