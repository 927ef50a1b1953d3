"""``parkbazaar forecast``: backtest the free-space forecaster on a CSV.

    parkbazaar forecast predict CSV --test-from T [--horizons 15,30,60] --out PRED.csv
                                    [--tz ZONE] [--holidays DATES|FILE]
    parkbazaar forecast eval CSV --test-from T [--horizons 15,30,60] [--tz ZONE]
                                 [--holidays DATES|FILE] [--json]

CSV has the columns ``site,capacity,at,free`` (``at`` ISO 8601 in UTC; a
time without an offset is read as UTC). Every parameter is fitted on the rows
before ``T``; each row at or after ``T`` is a forecast origin, predicted from
the rows up to it only. ``predict`` writes ``site,at,horizon_min,free,lo80,hi80``
(``at`` as written in the input; ``--out -`` for stdout); ``eval`` prints the
MAE per horizon of the forecaster and of the persistence and profile-delta
baselines on the same points, and how often the 80 % interval held the
outcome (the scoring rule: ``occupancy.forecast.evaluate``, docs/forecast.md).
``--tz`` is the sites' local zone (default Asia/Tehran); ``--holidays`` a
comma-separated list of local dates (YYYY-MM-DD) or a file of them.

Exit codes: 0 done; 2 bad usage or input (an option, an unknown zone, a CSV
row: the message names the file, line and column); 1 the output cannot be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

from occupancy.forecast import ForecastError
from occupancy.forecast.evaluate import (
    Predictions,
    SiteRows,
    forecast_all,
    parse_holidays,
    parse_time,
    print_scores,
    read_csv,
    score,
    score_json,
)
from occupancy.forecast.localtime import zone
from parkbazaar.clikit import fail

OUT_COLUMNS = ("site", "at", "horizon_min", "free", "lo80", "hi80")
MAX_HORIZON_MIN = 24 * 60


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("forecast", help="backtest free-space forecasts on a CSV")
    sub = p.add_subparsers(dest="forecast_command", metavar="ACTION", required=True)
    pr = sub.add_parser("predict", help="fit before T, forecast from every row at or after T")
    _common(pr)
    pr.add_argument("--out", required=True, metavar="PRED.csv", help="where to write (- for stdout)")
    pr.set_defaults(func=cmd_predict)
    ev = sub.add_parser("eval", help="MAE per horizon against persistence and profile delta")
    _common(ev)
    ev.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ev.set_defaults(func=cmd_eval)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("csv", metavar="CSV", type=Path, help="columns site,capacity,at,free")
    p.add_argument("--test-from", required=True, metavar="T", help="first forecast origin (ISO 8601, UTC)")
    p.add_argument("--horizons", default="15,30,60", metavar="MIN,…", help="minutes ahead (default 15,30,60)")
    p.add_argument("--tz", default="Asia/Tehran", metavar="ZONE", help="the sites' time zone")
    p.add_argument("--holidays", default="", metavar="DATES|FILE", help="local holiday dates")


def parse_horizons(text: str) -> tuple[float, ...]:
    """Minutes from ``15,30,60``; ValueError naming the bad one."""
    out = []
    for part in text.split(","):
        try:
            h = float(part)
        except ValueError:
            raise ValueError(f"--horizons: {part.strip()!r} is not a number of minutes") from None
        if not 0 < h <= MAX_HORIZON_MIN:
            raise ValueError(f"--horizons: {h:g} is not in 0 < minutes <= {MAX_HORIZON_MIN}")
        out.append(h)
    if len(set(out)) != len(out):
        raise ValueError("--horizons: a horizon is repeated")
    return tuple(out)


def _arguments(args: argparse.Namespace) -> tuple[tuple[float, ...], float, tuple[int, ...]]:
    horizons = parse_horizons(args.horizons)
    try:
        test_from = parse_time(args.test_from)
    except ValueError:
        raise ValueError(f"--test-from: {args.test_from!r} is not an ISO 8601 time") from None
    zone(args.tz)
    return horizons, test_from, parse_holidays(args.holidays)


def _run(args: argparse.Namespace, command: str
         ) -> tuple[dict[str, SiteRows], list[Predictions], tuple[float, ...], float] | int:
    try:
        horizons, test_from, holidays = _arguments(args)
        sites, clipped = read_csv(args.csv)
        if not any(min(r.t) < test_from for r in sites.values()):
            raise ForecastError(f"{args.csv}: no row before --test-from {args.test_from}: nothing to learn")
        if not any(max(r.t) >= test_from for r in sites.values()):
            raise ForecastError(f"{args.csv}: no row at or after --test-from {args.test_from}")
        preds, _, _ = forecast_all(sites, test_from, args.tz, horizons, holidays)
    except (ValueError, OSError) as exc:
        return fail(command, exc, 2)
    if clipped:
        print(f"parkbazaar {command}: {clipped} row(s) had free outside [0, capacity]; clipped",
              file=sys.stderr)
    methods = Counter(p.method for p in preds)
    print(f"parkbazaar {command}: {len(sites)} sites ("
          + ", ".join(f"{n} {m}" for m, n in methods.most_common()) + "), "
          f"{sum(p.origin_t.size for p in preds)} origins", file=sys.stderr)
    return sites, preds, horizons, test_from


def _number(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if v == v else ""


def write_predictions(out: TextIO, preds: list[Predictions], horizons: tuple[float, ...]) -> int:
    """Write the PRED.csv rows; how many."""
    out.write(",".join(OUT_COLUMNS) + "\n")
    n = 0
    for p in preds:
        for i, at in enumerate(p.at_text):
            for k, h in enumerate(horizons):
                out.write(f"{p.site},{at},{h:g},{_number(p.free[i, k])},{_number(p.lo80[i, k])},"
                          f"{_number(p.hi80[i, k])}\n")
                n += 1
    return n


def cmd_predict(args: argparse.Namespace) -> int:
    run = _run(args, "forecast predict")
    if isinstance(run, int):
        return run
    _, preds, horizons, _ = run
    try:
        if args.out == "-":
            write_predictions(sys.stdout, preds, horizons)
        else:
            with open(args.out, "w", newline="", encoding="utf-8") as fh:
                write_predictions(fh, preds, horizons)
    except OSError as exc:
        return fail("forecast predict", f"cannot write {args.out}: {exc.strerror or exc}", 1)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    run = _run(args, "forecast eval")
    if isinstance(run, int):
        return run
    sites, preds, horizons, test_from = run
    scores = score(sites, preds, test_from, args.tz, horizons)
    if args.json:
        print(json.dumps([score_json(s) for s in scores]))
    else:
        print_scores(scores, sys.stdout)
    return 0
