"""A PNG report per site: occupancy over the simulated day, truth against what the chain reported.

Top panel: occupied spaces over time, the truth (a step line) and what the
API/database reported at each history step (dots); unknown spaces as reported,
shaded. Fault windows are shaded and labelled; verify findings are marked
with red ticks. Times on the axis are the scenario's local times.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from occupancy.model import SpaceState
from simulators.engine import Engine
from simulators.truth import SiteKey
from simulators.verify import Verdict

FAULT_COLOURS = {"flapping": "#f4a261", "silent": "#9d4edd", "uplink_loss": "#e63946",
                 "clock_skew": "#457b9d", "duplicate_burst": "#2a9d8f", "malformed": "#6c757d",
                 "lorawan_rejoin": "#8ab17d"}


def truth_series(engine: Engine, site: SiteKey, step: timedelta) -> list[tuple[datetime, int, int]]:
    """(stamped time, occupied, unknown) of the expected report, every ``step``."""
    out = []
    t = engine.stamp(engine.start)
    while t <= engine.stamp(engine.end):
        c = engine.truth.counts_at(site, t)
        out.append((t, c[SpaceState.OCCUPIED], c[SpaceState.UNKNOWN]))
        t += step
    return out


def _num(times: list[datetime]) -> list[float]:
    """Times as matplotlib date numbers."""
    return [float(mdates.date2num(t)) for t in times]  # type: ignore[no-untyped-call]


def write_reports(engine: Engine, verdict: Verdict | None, out_dir: Path, tz: tzinfo) -> list[Path]:
    """One PNG per simulated site in ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in engine.targets:
        path = out_dir / f"{t.tenant}-{t.site.id}.png"
        _site_report(engine, t.key, t.site.name, len(t.spaces), verdict, path, tz)
        paths.append(path)
    return paths


def _local(engine: Engine, at: datetime, tz: tzinfo) -> datetime:
    """A stamped time as the scenario's local time (naive, for the axis)."""
    return (at - engine.shift).astimezone(tz).replace(tzinfo=None)


def _site_report(engine: Engine, site: SiteKey, name: str, total: int, verdict: Verdict | None,
                 path: Path, tz: tzinfo) -> None:
    fig, ax = plt.subplots(figsize=(11, 4.8), dpi=100)
    truth = truth_series(engine, site, engine.tick)
    ax.step(_num([_local(engine, t, tz) for t, _, _ in truth]), [o for _, o, _ in truth], where="post",
            color="#1d3557", lw=1.6, label="truth: occupied")
    if verdict is not None and site in verdict.reported_series:
        rep = [(t, c) for t, c in verdict.reported_series[site]
               if engine.stamp(engine.start) <= t <= engine.stamp(engine.end)]
        xs = _num([_local(engine, t, tz) for t, _ in rep])
        ax.plot(xs, [c[SpaceState.OCCUPIED] for _, c in rep], "o", ms=3.5, color="#e76f51",
                label=f"reported ({verdict.history_source}): occupied")
        ax.fill_between(xs, 0, [c[SpaceState.UNKNOWN] for _, c in rep], step="post", color="#adb5bd",
                        alpha=0.6, label="reported: unknown")
    _faults(ax, engine, site, tz)
    _findings(ax, engine, site, verdict, tz)
    ax.set_ylim(0, total * 1.08)
    ax.set_ylabel(f"spaces (of {total})")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    verdict_text = "" if verdict is None else (" — verify PASSED" if verdict.ok else " — verify FAILED")
    day = _local(engine, engine.stamp(engine.start), tz)
    ax.set_title(f"{name} ({site[0]}/{site[1]}), {day:%A %Y-%m-%d}{verdict_text}", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _faults(ax: Axes, engine: Engine, site: SiteKey, tz: tzinfo) -> None:
    gateways = {t.gateway for t in engine.targets if t.key == site}
    for f in engine.truth.faults:
        if f.target.split("/")[0] not in gateways | {site[1]}:
            continue
        start = _num([_local(engine, f.at, tz)])[0]
        colour = FAULT_COLOURS.get(f.kind, "#888888")
        if f.until is not None:
            ax.axvspan(start, _num([_local(engine, f.until, tz)])[0], color=colour, alpha=0.18)
        else:
            ax.axvline(start, color=colour, lw=1.2, ls="--")
        ax.annotate(f.kind, (start, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                    rotation=90, va="top", ha="right", color=colour)


def _findings(ax: Axes, engine: Engine, site: SiteKey, verdict: Verdict | None, tz: tzinfo) -> None:
    if verdict is None:
        return
    for f in verdict.findings:
        if f.site == site[1] and f.at is not None:
            ax.axvline(_num([_local(engine, f.at, tz)])[0], color="red", lw=0.8, alpha=0.7)
