"""The local stack's pure parts, and where the command line and the stack sit among the packages."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from simulators.scenario import parse_scenario
from stack.demo import demo_clock, simulated_start
from stack.scenario import scenario_start

REPO = Path(__file__).resolve().parents[2]
LIBRARY = ("occupancy", "gateway", "ingest", "dashboard_api", "simulators", "stack")
TEHRAN = ZoneInfo("Asia/Tehran")


def test_the_demo_starts_today_in_the_tenants_zone_and_skips_friday() -> None:
    late = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)  # Thursday 00:30 in Tehran, Wednesday in UTC
    start = simulated_start("08:00", "Asia/Tehran", late)
    assert start == datetime(2026, 11, 26, 8, 0, tzinfo=TEHRAN)
    friday = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # markets are closed on Fridays
    assert simulated_start("08:00", "Asia/Tehran", friday).date() == datetime(2026, 11, 26).date()


def test_the_demo_on_the_real_clock_catches_up_today_from_midnight() -> None:
    """Issue 16, item 6: at speed 1 the simulated day is today (Friday included), played from
    --start (00:00) up to now first; a start still ahead today is yesterday's."""
    now = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # Friday 07:30 in Tehran
    assert demo_clock(1, None, "Asia/Tehran", now) == (datetime(2026, 11, 27, 0, 0, tzinfo=TEHRAN), True)
    assert demo_clock(1, "09:00", "Asia/Tehran", now)[0] == datetime(2026, 11, 26, 9, 0, tzinfo=TEHRAN)
    assert demo_clock(60, None, "Asia/Tehran", now) == (datetime(2026, 11, 26, 8, 0, tzinfo=TEHRAN), False)


def test_a_scenario_without_a_start_ends_now_on_the_minute() -> None:
    scenario = parse_scenario({"name": "x", "hours": 2, "province": {"municipalities": 1}})
    now = datetime(2026, 11, 26, 10, 17, 42, tzinfo=UTC)
    start = scenario_start(scenario, TEHRAN, now)
    assert start == datetime(2026, 11, 26, 8, 17, tzinfo=UTC) and start.tzinfo == TEHRAN
    fixed = scenario.model_copy(update={"start": datetime(2026, 11, 26, 6, 0)})
    assert scenario_start(fixed, TEHRAN, now) == datetime(2026, 11, 26, 6, 0, tzinfo=TEHRAN)


def _imports(package: str) -> set[tuple[str, str]]:
    """(module, imported top-level package) for every import in ``package``, lazy ones too."""
    found = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found |= {(str(path.relative_to(REPO)), n.split(".")[0]) for n in names}
    return found


def test_no_library_package_imports_the_command_line() -> None:
    wrong = {(m, p) for pkg in LIBRARY for m, p in _imports(pkg) if p == "parkbazaar"}
    assert not wrong


def test_only_the_command_line_imports_the_stack() -> None:
    wrong = {(m, p) for pkg in LIBRARY if pkg != "stack" for m, p in _imports(pkg) if p == "stack"}
    assert not wrong


def test_tests_and_benches_reach_the_command_line_only_through_its_entry_point() -> None:
    for folder in ("tests", "bench", "scripts"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("parkbazaar"):
                    assert node.module == "parkbazaar.cli", f"{path}: from {node.module} import …"
