"""Free-space forecasts against the persistence and profile-delta baselines.

    python bench/forecast.py [--province]

Birmingham (``<repo>/../shared/datasets/birmingham-parking``: 30 car parks,
Oct–Dec 2016, half-hourly 08:00–16:30; Stolfi et al. 2017, UCI, CC BY 4.0;
Open Government Licence), test = its last 14 days; then two synthetic cities
at 5 and 15 minutes (``occupancy.forecast.synthetic``: a Friday-weekend city
in Asia/Tehran and a Saturday/Sunday one in Europe/London, each with a
holiday in the test fortnight), with and without the holiday list. For each:
MAE per horizon in spaces and as a share of capacity for the forecaster and
both baselines on the same points, the ratio to profile delta, the 80 %
interval's coverage, the CPU seconds of fitting every site, and the
microseconds of one ``predict`` from a stored model. ``--province`` also fits
300 synthetic sites (15-minute rows, 8 weeks) and prints the seconds. The
last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from occupancy.forecast import SiteModel, fit_many, predict  # noqa: E402
from occupancy.forecast.evaluate import SiteRows, forecast_all, print_scores, read_csv, score, score_json  # noqa: E402  # noqa: E402
from occupancy.forecast.localtime import day_number  # noqa: E402
from occupancy.forecast.synthetic import LONDON, TEHRAN, make_city, sites_of  # noqa: E402

BIRMINGHAM = REPO.parent / "shared" / "datasets" / "birmingham-parking" / "birmingham.csv"
HORIZONS = (15.0, 30.0, 60.0)
DAY = 86400.0


def _read_us(sites: dict[str, SiteRows], test_from: float, tz: str, holidays: tuple[int, ...]) -> float:
    """Median microseconds of one ``predict`` from a model read back from JSON (the API's path)."""
    series = {n: s.series() for n, s in sites.items()}
    models, _ = fit_many({n: s.before(test_from) for n, s in series.items()}, tz, holidays)
    name = max(series, key=lambda n: len(series[n]))
    model = SiteModel.from_json(json.loads(json.dumps(models[name].to_json())))
    s = series[name]
    at = float(s.t[-1])
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(50):
            predict(model, s, at, HORIZONS)
        runs.append((time.perf_counter() - t0) / 50 * 1e6)
    return statistics.median(runs)


def run(label: str, sites: dict[str, SiteRows], tz: str, holidays: tuple[int, ...] = ()) -> dict[str, object]:
    end = max(max(s.t) for s in sites.values())
    test_from = float((np.floor(end / DAY) - 13) * DAY)
    series = {n: s.series() for n, s in sites.items()}
    cpu = time.process_time()
    fit_many({n: s.before(test_from) for n, s in series.items()}, tz, holidays, HORIZONS)
    fit_s = time.process_time() - cpu
    preds, models, _ = forecast_all(sites, test_from, tz, HORIZONS, holidays)
    scores = score(sites, preds, test_from, tz, HORIZONS)
    rows = sum(len(s.t) for s in sites.values())
    methods = sorted({m.method for m in models.values()})
    read_us = _read_us(sites, test_from, tz, holidays)
    print(f"\n{label}: {len(sites)} sites, {rows} rows, tz {tz}, {len(holidays)} holiday(s) listed; "
          f"methods {', '.join(methods)}")
    print_scores(scores, sys.stdout)
    print(f"fit {fit_s:.2f} s of CPU for {len(sites)} sites; one predict {read_us:.0f} µs")
    return {"label": label, "sites": len(sites), "rows": rows, "fit_cpu_s": round(fit_s, 3),
            "predict_us": round(read_us, 1), "scores": [score_json(s) for s in scores]}


def province() -> dict[str, object]:
    city = replace(LONDON, tz="Asia/Tehran", weekend=(4,), sites=300, days=56, cadence_min=15, seed=9)
    sites = {n: s.series() for n, s in sites_of(make_city(city)).items()}
    cpu = time.process_time()
    fit_many(sites, city.tz)
    seconds = time.process_time() - cpu
    rows = sum(len(s) for s in sites.values())
    print(f"\nprovince: fit 300 sites ({rows} rows, 15-minute, 8 weeks) in {seconds:.1f} s of CPU")
    return {"label": "province-300", "rows": rows, "fit_cpu_s": round(seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--province", action="store_true", help="also time fitting 300 synthetic sites")
    args = parser.parse_args()
    results = []
    if BIRMINGHAM.exists():
        results.append(run("birmingham", read_csv(BIRMINGHAM)[0], "Europe/London"))
    else:
        print(f"{BIRMINGHAM} is missing: Birmingham skipped")
    for city, name in ((TEHRAN, "synthetic-tehran-5min"), (LONDON, "synthetic-london-15min")):
        sites = sites_of(make_city(city))
        listed = tuple(day_number(d.isoformat()) for d in city.holidays)
        results.append(run(f"{name} (holidays not listed)", sites, city.tz))
        results.append(run(f"{name} (holidays listed)", sites, city.tz, listed))
    if args.province:
        results.append(province())
    print(json.dumps({"forecast": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
