"""``parkbazaar vision``: evaluate, draw and replay the camera occupancy detector.

    parkbazaar vision eval PATH [--json] [--model FILE] [--threshold P | --unknown-band LO,HI]
                               [--adapt DIR]
    parkbazaar vision overlay FRAME LAYOUT OUT.png [--device CAM] [--model FILE]
    parkbazaar vision replay DIR LAYOUT [--device CAM] [--enter P] [--leave P]
                                        [--confirm N] [--min-seconds S] [--json]

``replay`` runs the frames through the gateway's occupancy state machine
(``occupancy/statemachine.py``): ``--enter/--leave`` are its hysteresis band,
``--confirm/--min-seconds`` its ``confirm_readings``/``debounce_s``; a change
is stamped with the frame that confirmed it.

``eval`` works on any PKLot-format tree (each image beside a PKLot XML of the
same stem); how ``unknown`` answers are scored is in
``occupancy.vision.evaluate``. The operating point: ``--threshold P`` is a
plain split (occupied when ``p >= P``, never unknown), ``--unknown-band
LO,HI`` answers free below LO, occupied from HI, unknown between; the
default is the one the model file recommends. ``--adapt DIR`` first counts
the (unlabelled) frames under DIR into a camera adaptation
(``occupancy.vision.adapt``) and scores PATH with the offsets it teaches.

LAYOUT is a PKLot XML, an Ultralytics ``bounding_boxes.json`` or
a site YAML (with ``--device``, the camera's id).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2

from gateway.camera import CAMERA_POLICY, CameraChange, CameraError, CameraLoop, folder_frames
from occupancy import OccupancyError
from occupancy.statemachine import Policy
from occupancy.vision.adapt import Adaptation
from occupancy.vision.detector import DEFAULT_DETECTOR, Detector, OperatingPoint
from occupancy.vision.errors import VisionError
from occupancy.vision.evaluate import Confusion
from occupancy.vision.layout import load_layout
from occupancy.vision.loading import adapt_folder, evaluate_folder, first_layout, read_frame
from occupancy.vision.overlay import draw_overlay


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``vision`` command and its subcommands to ``subparsers``."""
    vision = subparsers.add_parser("vision", help="camera occupancy detector tools")
    sub = vision.add_subparsers(dest="vision_command", metavar="SUBCOMMAND", required=True)
    _add_eval(sub)
    _add_overlay(sub)
    _add_replay(sub)


def _model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_DETECTOR,
        help="model description (JSON, kind cnn or logistic; default: the shipped CNN)",
    )
    point = parser.add_mutually_exclusive_group()
    point.add_argument("--threshold", type=float, help="plain split: occupied when p >= this, no unknown")
    point.add_argument(
        "--unknown-band",
        type=_band,
        metavar="LO,HI",
        help="free when p < LO, occupied when p >= HI, unknown between (default: the model's)",
    )


def _band(text: str) -> OperatingPoint:
    try:
        low, high = (float(v) for v in text.split(","))
        return OperatingPoint(low, high)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"want LO,HI with 0 <= LO <= HI <= 1, got {text!r}") from exc


def operating_point(args: argparse.Namespace) -> OperatingPoint | None:
    """The operating point the options ask for (``None``: the model file's)."""
    if args.threshold is not None:
        return OperatingPoint.threshold(args.threshold)
    band: OperatingPoint | None = args.unknown_band
    return band


def load_detector(args: argparse.Namespace) -> Detector:
    """The detector of ``--model`` at the operating point of the options."""
    return Detector.load(args.model, operating_point(args))


def _add_eval(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("eval", help="accuracy on a PKLot-format folder (image + XML pairs)")
    parser.add_argument("path", type=Path, help="folder searched recursively")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--adapt", type=Path, metavar="DIR", help="adapt on unlabelled frames in DIR first")
    _model_option(parser)
    parser.set_defaults(func=run_eval)


def _add_overlay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("overlay", help="draw the detector's view of a frame into a PNG")
    parser.add_argument("frame", type=Path)
    parser.add_argument("layout", type=Path, help="PKLot .xml, bounding_boxes .json or site .yaml")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--device", help="camera id in a site file")
    _model_option(parser)
    parser.set_defaults(func=run_overlay)


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("replay", help="run a folder of frames as a stream, print changes")
    parser.add_argument("folder", type=Path, help="frames, taken in name order")
    parser.add_argument("layout", type=Path, help="PKLot .xml, bounding_boxes .json or site .yaml")
    parser.add_argument("--device", help="camera id in a site file")
    defaults = CAMERA_POLICY
    parser.add_argument("--enter", type=float, default=defaults.enter, help="p to vote occupied")
    parser.add_argument("--leave", type=float, default=defaults.leave, help="p to vote free")
    parser.add_argument(
        "--confirm", type=int, default=defaults.confirm_readings, help="consecutive frames to confirm"
    )
    parser.add_argument(
        "--min-seconds", type=float, default=defaults.debounce_s, help="minimum hold to confirm"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per change")
    _model_option(parser)
    parser.set_defaults(func=run_replay)


def _fail(message: str) -> int:
    print(f"parkbazaar vision: {message}", file=sys.stderr)
    return 2


_NOTES_SHOWN = 20


def run_eval(args: argparse.Namespace) -> int:
    """``vision eval``: score the detector on every labelled frame under a folder."""
    if not args.path.is_dir():
        return _fail(f"not a folder: {args.path}")
    if args.adapt is not None and not args.adapt.is_dir():
        return _fail(f"not a folder: {args.adapt}")
    notes: list[str] = []
    try:
        detector = load_detector(args)
        adapted = _adapt(detector, args.path, args.adapt, notes) if args.adapt is not None else None
        result = evaluate_folder(detector, args.path, notes.append)
    except (VisionError, ValueError) as exc:
        return _fail(str(exc))
    for note in notes[:_NOTES_SHOWN]:
        print(f"parkbazaar vision: {note}", file=sys.stderr)
    if len(notes) > _NOTES_SHOWN:
        print(f"parkbazaar vision: … and {len(notes) - _NOTES_SHOWN} more notes", file=sys.stderr)
    if result.frames == 0:
        return _fail(f"no image + PKLot XML pairs (usable) under {args.path}")
    summary = result.summary() | ({"adaptation": adapted} if adapted is not None else {})
    print(json.dumps(summary) if args.json else format_summary(result, adapted))
    return 0


def _adapt(detector: Detector, path: Path, folder: Path, notes: list[str]) -> dict[str, Any]:
    """Count the frames of ``folder`` into a fresh adaptation; set the detector's offsets."""
    layout = first_layout(path)
    if layout is None:
        raise VisionError(f"no PKLot XML under {path} to take the camera's layout from")
    adaptation = Adaptation(detector.operating)
    frames = adapt_folder(detector, adaptation, folder, layout, notes.append)
    detector.offsets = adaptation.offsets(layout.ids)
    camera = adaptation.camera_offset()
    return {
        "frames": frames,
        "spaces_adapted": adaptation.progress(layout.ids),
        "camera_offset": camera,
        "mean_offset": round(sum(detector.offsets.values()) / len(layout.ids), 4),
    }


def format_summary(result: Confusion, adapted: dict[str, Any] | None = None) -> str:
    """A human-readable evaluation report."""
    s = result.summary()
    camera = None if adapted is None else adapted["camera_offset"]
    lines = [] if adapted is None else [
        f"adapted    on {adapted['frames']} frames: {adapted['spaces_adapted']:.0%} of spaces on their own, "
        f"camera offset {'none' if camera is None else f'{camera:+.2f}'} (logit)"
    ]
    return "\n".join(
        [
            *lines,
            f"frames     {s['frames']}  (skipped {s['skipped_frames']})",
            f"spaces     {s['spaces']}  labelled (answered {s['answered']}, unlabelled {s['unlabelled']})",
            f"accuracy   {s['accuracy']:.4f}  (unknown = wrong; answered {s['accuracy_answered']:.4f})",
            f"occupied   precision {s['precision']:.4f}  recall {s['recall']:.4f}  f1 {s['f1']:.4f}",
            f"free       precision {s['precision_free']:.4f}  recall {s['recall_free']:.4f}",
            f"unknown    {s['unknown_share']:.4f} of labelled spaces "
            f"({s['unknown_occupied']} occupied, {s['unknown_free']} free)",
            f"TP {s['tp']}  FP {s['fp']}  TN {s['tn']}  FN {s['fn']}",
            f"ms/frame   {s['ms_per_frame']:.1f}",
        ]
    )


def run_overlay(args: argparse.Namespace) -> int:
    """``vision overlay``: write a PNG of the frame with each space coloured by state."""
    try:
        layout = load_layout(args.layout, args.device)
        frame = read_frame(args.frame)
        results = load_detector(args).detect(frame, layout)
    except VisionError as exc:
        return _fail(str(exc))
    if not cv2.imwrite(str(args.out), draw_overlay(frame, layout, results)):
        return _fail(f"cannot write {args.out}")
    occupied = sum(r.state == "occupied" for r in results)
    print(f"{args.out}: {occupied} of {len(results)} spaces occupied")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    """``vision replay``: frames as a stream through the detector and the state machine."""
    try:
        policy = Policy(enter=args.enter, leave=args.leave, confirm_readings=args.confirm,
                        debounce_s=args.min_seconds)
        layout = load_layout(args.layout, args.device)
        source = folder_frames(args.folder)
        loop = CameraLoop(source, layout, load_detector(args), policy,
                          args.device or "camera")
        for path, (at, frame) in zip(source.paths, source, strict=True):
            for change in loop.process(at, frame):
                print(_format_change(path.name, change, args.json), flush=True)
    except (OccupancyError, CameraError) as exc:  # bad layout ids, model, frames, policy
        return _fail(str(exc))
    return 0


def _format_change(frame: str, change: CameraChange, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "frame": frame,
                "at": change.at.isoformat(),
                "space": change.space_id,
                "from": change.previous,
                "to": change.state,
                "probability": round(change.probability, 4),
            }
        )
    return (
        f"{frame}  {change.at:%Y-%m-%d %H:%M:%S}  {change.space_id:>8}  "
        f"{change.previous:>8} -> {change.state:8}  p={change.probability:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vision`` on its own: ``python -m parkbazaar.vision_cli eval PATH``."""
    parser = argparse.ArgumentParser(prog="parkbazaar")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["vision", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
