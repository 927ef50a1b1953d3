"""``--verify``: compare what the chain reports with the ground truth, and say where it lied.

A verdict is about this run only. This run's stored events are found by their
key as the run sent them — gateway, ``seq`` and ``observed_at`` (the wire's
millisecond) — so the rows of an earlier run with the same gateways and seqs
(a temporary gateway state dir starts over at seq 1; a scenario replayed a
minute later has the same numbers at other times) never count for this one.

Four checks, each producing findings that name spaces and times:

1. **now** — ``GET /v1/sites/{t}/{s}/spaces``: every space's current state
   against ``Truth.expected_at(now)``;
2. **checkpoints** — each space's state at each checkpoint as stored by this
   run (its last stored event at or before it, ``unknown`` when older than the
   staleness bound), against the truth then;
3. **history** — the site's counts over the run, from the API's history
   endpoint when it answers 200, else from SQL ``site_counts_series``,
   against the truth's counts at each step. Both read every stored event: when
   the run's window holds events that are not this run's (an earlier run on
   the same database), the counts are computed from this run's stored events
   instead (the same step function), and a note says so;
4. **delivery** — every event a gateway sent is in ``occupancy_events``
   (gateway, seq, observed_at), except those a fault was meant to get rejected;
5. **lorawan** — no reading older than its device's last one reached a
   gateway's state machine (a late or repeated ChirpStack frame the receiver
   let through), and every ChirpStack event reached the gateways.

Spaces in a window the truth excuses (flapping, skewed clock, between a
sensor's last word and its staleness bound) are not counted. Camera-watched
spaces may be wrong up to ``camera_max_error`` of their comparisons: the
detector is measured, not trusted. The pure comparison functions (and the
step function over this run's events) are separate from the small fetchers
(HTTP with urllib, SQL with asyncpg).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from occupancy.model import OccupancyEvent, SpaceState
from occupancy.wire import format_time, parse_time
from simulators.faults import GwKey
from simulators.truth import SiteKey, SpaceKey, Truth

Counts = dict[SpaceState, int]


@dataclass(frozen=True, slots=True)
class Finding:
    """One way the chain differs from the truth."""

    check: str  # now, checkpoint, history, delivery, camera, lorawan
    site: str
    what: str
    at: datetime | None = None

    def line(self, tz: Any = None) -> str:
        when = "" if self.at is None else (f" at {self.at.astimezone(tz):%H:%M:%S}" if tz is not None
                                           else f" at {self.at.astimezone(UTC):%H:%M:%S}Z")
        return f"[{self.check}] {self.site}{when}: {self.what}"


@dataclass
class Verdict:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compared: int = 0
    camera_compared: int = 0
    camera_wrong: int = 0
    history_source: str = "sql"
    reported_series: dict[SiteKey, list[tuple[datetime, Counts]]] = field(default_factory=dict)
    reported_now: dict[SiteKey, dict[str, SpaceState]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def text(self, tz: Any = None, limit: int = 40) -> str:
        head = "VERIFY PASSED" if self.ok else f"VERIFY FAILED: {len(self.findings)} findings"
        lines = [f"{head} ({self.compared} space comparisons, history from {self.history_source})"]
        lines += [f"  {f.line(tz)}" for f in self.findings[:limit]]
        if len(self.findings) > limit:
            lines.append(f"  … and {len(self.findings) - limit} more")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---- pure comparisons -----------------------------------------------------------


def compare_states(truth: Truth, site: SiteKey, reported: dict[str, SpaceState], t: datetime,
                   check: str, verdict: Verdict) -> None:
    """Per-space comparison at ``t``; wrong spaces grouped into one finding per kind."""
    wrong: dict[str, list[str]] = {}
    for key in truth.spaces_of(site):
        if truth.is_excused(key, t):
            continue
        expected = truth.expected_at(key, t)
        got = reported.get(key[2], SpaceState.UNKNOWN)
        if key in truth.camera_spaces:
            verdict.camera_compared += 1
            verdict.camera_wrong += got is not expected
            continue
        verdict.compared += 1
        if got is not expected:
            label = _label(expected, got)
            wrong.setdefault(label, []).append(f"{key[2]} ({got}, truth {expected}{_since(truth, key, t)})")
    for label, spaces in wrong.items():
        verdict.findings.append(Finding(check, site[1], f"{len(spaces)} spaces {label}: "
                                        + ", ".join(spaces[:12]) + (" …" if len(spaces) > 12 else ""), t))


def _label(expected: SpaceState, got: SpaceState) -> str:
    if got is SpaceState.UNKNOWN:
        return "unknown or stale (missing events?)"
    if expected is SpaceState.UNKNOWN:
        return "should be unknown (silent device reported as live)"
    return "wrong"


def _since(truth: Truth, key: SpaceKey, t: datetime) -> str:
    series = [at for at, _ in truth.changes.get(key, []) if at <= t]
    return f" since {series[-1].astimezone(UTC):%H:%M:%S}Z" if series else ""


def compare_history(truth: Truth, site: SiteKey, series: Sequence[tuple[datetime, Counts]],
                    start: datetime, end: datetime, verdict: Verdict) -> None:
    """Counts per step against the truth; consecutive bad steps merged into one finding."""
    bad: list[tuple[datetime, str]] = []
    for t, counts in series:
        if not start < t <= end:
            continue
        excused = sum(1 for k in truth.spaces_of(site)
                      if truth.is_excused(k, t) or k in truth.camera_spaces)
        expected = truth.counts_at(site, t)
        diff = max(abs(counts.get(s, 0) - expected[s]) for s in SpaceState)
        if diff > excused:
            bad.append((t, f"API free/occupied/unknown {_fou(counts)}, truth {_fou(expected)}"))
    for run in _runs(bad, verdict):
        first, last = run[0][0], run[-1][0]
        verdict.findings.append(Finding(
            "history", site[1], f"counts differ {first.astimezone(UTC):%H:%M}–"
            f"{last.astimezone(UTC):%H:%M}Z ({len(run)} steps), "
            f"first: {run[0][1]}", first))


def _runs(bad: list[tuple[datetime, str]], verdict: Verdict) -> Iterable[list[tuple[datetime, str]]]:
    run: list[tuple[datetime, str]] = []
    for item in bad:
        if run and item[0] - run[-1][0] > timedelta(hours=1):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def _fou(c: Counts) -> str:
    return f"{c.get(SpaceState.FREE, 0)}/{c.get(SpaceState.OCCUPIED, 0)}/{c.get(SpaceState.UNKNOWN, 0)}"


def compare_delivery(gw: GwKey, sent: Sequence[OccupancyEvent], stored: set[int],
                     excused: set[int], verdict: Verdict) -> None:
    """Events sent but not stored (``excused`` seqs aside), as seq ranges with their times."""
    missing = [e for e in sent if e.seq not in stored and e.seq not in excused]
    rejected = sum(1 for e in sent if e.seq not in stored) - len(missing)
    if rejected:
        verdict.notes.append(f"{gw[1]}: {rejected} events of a skewed clock not stored, as expected")
    for lo, hi in _seq_ranges(missing):
        verdict.findings.append(Finding(
            "delivery", gw[1], f"events seq {lo.seq}–{hi.seq} ({hi.seq - lo.seq + 1}) never stored, "
            f"observed {lo.at.astimezone(UTC):%H:%M:%S}–{hi.at.astimezone(UTC):%H:%M:%S}Z", lo.at))


def _seq_ranges(events: Sequence[OccupancyEvent]) -> list[tuple[OccupancyEvent, OccupancyEvent]]:
    out: list[tuple[OccupancyEvent, OccupancyEvent]] = []
    for e in sorted(events, key=lambda e: e.seq):
        if out and e.seq == out[-1][1].seq + 1:
            out[-1] = (out[-1][0], e)
        else:
            out.append((e, e))
    return out


def camera_finding(verdict: Verdict, max_error: float) -> None:
    if not verdict.camera_compared:
        return
    share = verdict.camera_wrong / verdict.camera_compared
    verdict.notes.append(f"camera-watched spaces: {verdict.camera_wrong} of "
                         f"{verdict.camera_compared} comparisons differ ({share:.1%}, "
                         f"allowed {max_error:.0%})")
    if share > max_error:
        verdict.findings.append(Finding("camera", "*", f"{share:.1%} of camera comparisons wrong, "
                                        f"more than {max_error:.0%}"))


# ---- this run's stored events as a step function (pure) -----------------------------

Observation = tuple[datetime, int, SpaceState]  # observed_at, seq, state


@dataclass
class RunEvents:
    """What this run stored: seqs per gateway, and per site each space's observations."""

    seqs: dict[GwKey, set[int]] = field(default_factory=dict)
    spaces: dict[SiteKey, dict[str, list[Observation]]] = field(default_factory=dict)
    stale: dict[SiteKey, timedelta] = field(default_factory=dict)

    def add(self, gw: GwKey, site: str, space: str, obs: Observation) -> None:
        self.seqs.setdefault(gw, set()).add(obs[1])
        self.spaces.setdefault((gw[0], site), {}).setdefault(space, []).append(obs)

    def sort(self) -> None:
        for spaces in self.spaces.values():
            for series in spaces.values():
                series.sort()

    def within(self, site: SiteKey, lo: datetime, hi: datetime) -> int:
        """How many of this run's observations of ``site`` lie in ``(lo, hi]``."""
        return sum(1 for series in self.spaces.get(site, {}).values() for at, _, _ in series
                   if lo < at <= hi)


def state_at(series: Sequence[Observation], stale: timedelta, t: datetime) -> SpaceState:
    """A space's state at ``t``: its last observation at or before ``t``, unknown when there is
    none or it is older than ``stale`` (the rule of the API's history)."""
    i = bisect.bisect_right(series, t, key=lambda o: o[0])
    if i == 0 or series[i - 1][0] <= t - stale:
        return SpaceState.UNKNOWN
    return series[i - 1][2]


def states_at(spaces: dict[str, list[Observation]], stale: timedelta, t: datetime) -> dict[str, SpaceState]:
    return {space: state_at(series, stale, t) for space, series in spaces.items()}


def run_series(spaces: dict[str, list[Observation]], names: Sequence[str], stale: timedelta,
               start: datetime, end: datetime, step: timedelta) -> list[tuple[datetime, Counts]]:
    """The counts of ``names`` at every ``step`` after ``start`` up to ``end``, from this run's
    observations only."""
    out = []
    t = start + step
    while t <= end:
        counts = dict.fromkeys(SpaceState, 0)
        for name in names:
            counts[state_at(spaces.get(name, []), stale, t)] += 1
        out.append((t, counts))
        t += step
    return out


# ---- fetching (HTTP and SQL) ----------------------------------------------------------


def http_json(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    """GET ``url``; (status, parsed JSON), (status, None) for an HTTP error, (0, why) when
    it did not answer in JSON. Only ever 127.0.0.1 in tests."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError) as exc:
        return 0, str(getattr(exc, "reason", None) or exc)


def spaces_from_api(api: str, site: SiteKey) -> dict[str, SpaceState] | str:
    """Every space's state as the API reports it; else why not (naming the URL)."""
    url = f"{api}/v1/sites/{site[0]}/{site[1]}/spaces"
    status, body = http_json(url)
    if status == 200 and isinstance(body, list):
        return {row["space"]: SpaceState(row["state"]) for row in body}
    return f"GET {url} answered {status}" if status else f"GET {url} failed: {body}"


def history_from_api(api: str, site: SiteKey, start: datetime, end: datetime,
                     step: timedelta) -> list[tuple[datetime, Counts]] | None:
    """The API's history endpoint, if it exists and answers in a shape we know."""
    query = urllib.parse.urlencode({"from": start.isoformat(), "to": end.isoformat(),
                                    "step": f"{int(step.total_seconds())}s"})
    status, body = http_json(f"{api}/v1/sites/{site[0]}/{site[1]}/history?{query}")
    if status != 200:
        return None
    rows = body.get("series") or body.get("points") or body.get("buckets") if isinstance(body, dict) else body
    try:
        return [(_row_time(r), {s: int(r[s.value]) for s in SpaceState}) for r in rows or []] or None
    except (KeyError, TypeError, ValueError):
        return None


def _row_time(row: dict[str, Any]) -> datetime:
    for key in ("bucket", "t", "time", "at", "from", "start"):
        if key in row:
            return parse_time(row[key], key)
    raise KeyError("time")


_SERIES = """
SELECT c.bucket, c.free, c.occupied, c.unknown
FROM sites si JOIN tenants tn ON tn.id = si.tenant_id
CROSS JOIN LATERAL site_counts_series(si.id, $3, $4, $5, make_interval(secs => si.stale_after_s)) c
WHERE tn.slug = $1 AND si.slug = $2 ORDER BY c.bucket
"""

# This run's events of one gateway as stored: matched on the whole key as sent.
_RUN_EVENTS = """
SELECT si.slug AS site, sp.slug AS space, ev.observed_at, ev.seq, ev.state
FROM occupancy_events ev
JOIN gateways g ON g.id = ev.gateway_id JOIN tenants tn ON tn.id = g.tenant_id
JOIN unnest($3::bigint[], $4::timestamptz[]) AS sent(seq, at)
  ON sent.seq = ev.seq AND sent.at = ev.observed_at
JOIN spaces sp ON sp.id = ev.space_id JOIN sites si ON si.id = sp.site_id
WHERE tn.slug = $1 AND g.slug = $2
"""

_STALE = """SELECT si.stale_after_s FROM sites si JOIN tenants tn ON tn.id = si.tenant_id
WHERE tn.slug = $1 AND si.slug = $2"""

# Every stored event of a site's spaces in (lo, hi], whoever sent it.
_IN_WINDOW = """
SELECT count(*) FROM occupancy_events ev JOIN spaces sp ON sp.id = ev.space_id
JOIN sites si ON si.id = sp.site_id JOIN tenants tn ON tn.id = si.tenant_id
WHERE tn.slug = $1 AND si.slug = $2 AND ev.observed_at > $3 AND ev.observed_at <= $4
"""


def _keys(events: Sequence[OccupancyEvent]) -> tuple[list[int], list[datetime]]:
    """(seqs, times) as stored: a time is the wire's, to the millisecond."""
    return [e.seq for e in events], [parse_time(format_time(e.at), "at") for e in events]


async def stored_seqs(con: asyncpg.Connection, gw: GwKey, events: Sequence[OccupancyEvent]) -> set[int]:
    """The seqs of ``events`` stored with the very time they were sent with."""
    return {r["seq"] for r in await con.fetch(_RUN_EVENTS, gw[0], gw[1], *_keys(events))}


async def run_events(con: asyncpg.Connection, sent: dict[GwKey, list[OccupancyEvent]],
                     sites: Sequence[SiteKey]) -> RunEvents:
    """This run's stored events, and the staleness bound of each site."""
    found = RunEvents()
    for gw, events in sent.items():
        for r in await con.fetch(_RUN_EVENTS, gw[0], gw[1], *_keys(events)):
            found.add(gw, r["site"], r["space"], (r["observed_at"], r["seq"], SpaceState(r["state"])))
    found.sort()
    for site in sites:
        found.stale[site] = timedelta(seconds=await con.fetchval(_STALE, site[0], site[1]) or 0)
    return found


async def series_sql(con: asyncpg.Connection, site: SiteKey, start: datetime, end: datetime,
                     step: timedelta) -> list[tuple[datetime, Counts]]:
    rows = await con.fetch(_SERIES, site[0], site[1], start, end, step)
    return [(r["bucket"], {SpaceState.FREE: r["free"], SpaceState.OCCUPIED: r["occupied"],
                           SpaceState.UNKNOWN: r["unknown"]}) for r in rows]


async def dead_letter_counts(con: asyncpg.Connection) -> dict[str, int]:
    rows = await con.fetch("SELECT reason, count(*) AS n FROM dead_letters GROUP BY reason")
    return {r["reason"]: int(r["n"]) for r in rows}


@dataclass(frozen=True, slots=True)
class VerifyInput:
    truth: Truth
    sent: dict[GwKey, list[OccupancyEvent]]
    start: datetime  # stamped
    end: datetime  # stamped
    checkpoints: list[datetime]
    step: timedelta
    camera_max_error: float
    skewed: dict[GwKey, set[int]] = field(default_factory=dict)
    lorawan_late: int = 0  # readings older than their device's machine (should be none)
    lorawan_missing: int = 0  # ChirpStack events the gateways did not receive in time


async def verify(inp: VerifyInput, *, api: str, dsn: str) -> Verdict:
    """Run the four checks; the verdict names what is wrong, where and when."""
    verdict = Verdict()
    now = max(inp.end, _utcnow(inp.end))
    con = await asyncpg.connect(dsn)
    try:
        stored = await run_events(con, inp.sent, inp.truth.sites())
        for site in inp.truth.sites():
            await _check_site(inp, site, api, con, now, stored, verdict)
        for gw, events in inp.sent.items():
            compare_delivery(gw, events, stored.seqs.get(gw, set()), inp.skewed.get(gw, set()), verdict)
        dead = await dead_letter_counts(con)
        if dead:
            verdict.notes.append("dead letters: " + ", ".join(f"{k} {v}" for k, v in sorted(dead.items())))
    finally:
        await con.close()
    camera_finding(verdict, inp.camera_max_error)
    lorawan_findings(inp, verdict)
    return verdict


def lorawan_findings(inp: VerifyInput, verdict: Verdict) -> None:
    if inp.lorawan_late:
        verdict.findings.append(Finding(
            "lorawan", "*", f"{inp.lorawan_late} readings older than their device's last one reached "
            "the state machines (late or repeated ChirpStack frames let through)"))
    if inp.lorawan_missing:
        verdict.findings.append(Finding(
            "lorawan", "*", f"{inp.lorawan_missing} ChirpStack events never reached a gateway"))


async def _check_site(inp: VerifyInput, site: SiteKey, api: str, con: asyncpg.Connection,
                      now: datetime, stored: RunEvents, verdict: Verdict) -> None:
    reported = await asyncio.to_thread(spaces_from_api, api, site)
    if isinstance(reported, str):
        verdict.findings.append(Finding("now", site[1], f"the API did not answer: {reported}"))
    else:
        verdict.reported_now[site] = reported
        compare_states(inp.truth, site, reported, now, "now", verdict)
    mine, stale = stored.spaces.get(site, {}), stored.stale[site]
    for t in inp.checkpoints:
        compare_states(inp.truth, site, states_at(mine, stale, t), t, "checkpoint", verdict)
    series = await _history(inp, site, api, con, stored, verdict)
    verdict.reported_series[site] = series
    compare_history(inp.truth, site, series, inp.start, inp.end, verdict)


async def _history(inp: VerifyInput, site: SiteKey, api: str, con: asyncpg.Connection,
                   stored: RunEvents, verdict: Verdict) -> list[tuple[datetime, Counts]]:
    """The API's history (else SQL's) when the run's window holds only this run's events; else
    the step function of this run's events, with a note."""
    stale = stored.stale[site]
    lo = inp.start - stale  # an event this old still counts at the start
    everyone = int(await con.fetchval(_IN_WINDOW, site[0], site[1], lo, inp.end))
    others = everyone - stored.within(site, lo, inp.end)
    if others > 0:
        verdict.history_source = "this run's stored events"
        verdict.notes.append(f"{site[1]}: {others} stored events in this run's window are not this "
                             "run's (an earlier run on this database?): its history and checkpoints "
                             "are judged on this run's events only")
        names = [k[2] for k in inp.truth.spaces_of(site)]
        return run_series(stored.spaces.get(site, {}), names, stale, inp.start, inp.end, inp.step)
    series = await asyncio.to_thread(history_from_api, api, site, inp.start, inp.end, inp.step)
    if series is not None:
        verdict.history_source = "api"
        return series
    return await series_sql(con, site, inp.start, inp.end, inp.step)


def _utcnow(like: datetime) -> datetime:
    return datetime.now(like.tzinfo)
