"""Every fault of examples/scenarios/faults.yaml, in one run of the whole chain, and its
effect seen in the API and the database. The pipeline hides or surfaces each as it should,
so the verdict passes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from ingest.migrate import migrate_dsn
from occupancy.model import SpaceState
from occupancy.sitefile import read_site_file
from simulators.scenario import load_scenario
from stack.embedded import Mosquitto
from stack.scenario import ScenarioRun, run_scenario
from tests.support.database import scratch_database
from tests.support.ingest import settings_for

pytestmark = pytest.mark.mosquitto
GW_LOT, GW_BAZAAR = ("marvdasht", "gw-station-lot"), ("marvdasht", "gw-bazaar")


@pytest.fixture(scope="module")
def run(pg_admin_dsn: str, broker: Mosquitto, examples_dir: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScenarioRun, str]]:
    prefix = f"t{uuid.uuid4().hex[:10]}/parkbazaar/v1"
    faults = load_scenario(examples_dir / "scenarios" / "faults.yaml")
    scenario = faults.model_copy(update={"speed": faults.speed * 2})  # the same hours in half the time
    tmp = tmp_path_factory.mktemp("faults")
    with scratch_database(pg_admin_dsn) as dsn:
        asyncio.run(migrate_dsn(dsn, "plain"))
        site = read_site_file(examples_dir / "scenarios" / "marvdasht.yaml")
        chain = asyncio.run(run_scenario(scenario, [site], settings_for(dsn, broker.url, prefix),
                                         data_dir=tmp, report_dir=tmp / "report"))
        print(chain.verdict.text() if chain.verdict else "no verdict")
        yield chain, dsn


def fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        con = await asyncpg.connect(dsn)
        try:
            return list(await con.fetch(sql, *args))
        finally:
            await con.close()
    return asyncio.run(go())


def test_the_verdict_passes_and_every_fault_is_logged_with_its_time(run: tuple[ScenarioRun, str]) -> None:
    chain, _ = run
    assert chain.verdict is not None and chain.verdict.ok, chain.verdict.text()
    assert chain.engine is not None
    kinds = [f.kind for f in chain.engine.truth.faults]
    assert kinds == ["flapping", "silent", "uplink_loss", "clock_skew", "duplicate_burst", "malformed"]
    assert all(f.at is not None for f in chain.engine.truth.faults)
    assert len(chain.reports) == 2 and all(p.stat().st_size > 10_000 for p in chain.reports)


def test_flapping_sensor_shows_as_a_burst_of_changes(run: tuple[ScenarioRun, str]) -> None:
    _chain, dsn = run
    rows = fetch(dsn, "SELECT count(*) AS n FROM occupancy_events e JOIN spaces s ON s.id = e.space_id "
                      "WHERE s.slug = 'A-010' AND e.kind = 'change'")
    assert rows[0]["n"] >= 15  # 20 simulated minutes of toggling every minute


def test_silent_sensor_turns_unknown_in_the_api(run: tuple[ScenarioRun, str]) -> None:
    chain, _ = run
    assert chain.verdict is not None
    now = chain.verdict.reported_now[("marvdasht", "station-lot")]
    assert now["B-001"] is SpaceState.UNKNOWN and now["B-002"] is SpaceState.UNKNOWN
    assert sum(s is SpaceState.UNKNOWN for s in now.values()) == 2


def test_uplink_loss_backlog_is_delivered_after_and_nothing_is_lost(run: tuple[ScenarioRun, str]) -> None:
    chain, dsn = run
    assert chain.play is not None and chain.engine is not None
    loss = next(f for f in chain.engine.truth.faults if f.kind == "uplink_loss")
    assert loss.until is not None
    sent = chain.play.sent[GW_LOT]
    during = [e.seq for e in sent if loss.at <= e.at < loss.until]
    assert len(during) > 50
    rows = fetch(dsn, "SELECT e.seq, e.received_at FROM occupancy_events e "
                      "JOIN gateways g ON g.id = e.gateway_id WHERE g.slug = $1 AND e.seq = ANY($2)",
                 GW_LOT[1], during)
    assert len(rows) == len(during)  # every event observed while cut off is stored
    assert chain.play.nodes[GW_LOT].depth == 0
    received = sorted(r["received_at"] for r in rows)
    assert (received[-1] - received[0]).total_seconds() < 5  # delivered as one backlog, after


def test_clock_running_ahead_is_dead_lettered_as_future_timestamp(run: tuple[ScenarioRun, str]) -> None:
    _, dsn = run
    rows = fetch(dsn, "SELECT count(*) AS n FROM dead_letters WHERE reason = 'future_timestamp' "
                      "AND gateway = $1", GW_BAZAAR[1])
    assert rows[0]["n"] >= 1


def test_duplicate_burst_is_stored_once(run: tuple[ScenarioRun, str]) -> None:
    chain, dsn = run
    assert chain.play is not None and chain.play.duplicates == 300
    rows = fetch(dsn, "SELECT count(*) AS n, count(DISTINCT e.seq) AS d FROM occupancy_events e "
                      "JOIN gateways g ON g.id = e.gateway_id WHERE g.slug = $1", GW_LOT[1])
    assert rows[0]["n"] == rows[0]["d"] == len(chain.play.sent[GW_LOT])


def test_malformed_payloads_are_dead_lettered_with_their_reasons(run: tuple[ScenarioRun, str]) -> None:
    _, dsn = run
    rows = fetch(dsn, "SELECT reason, count(*) AS n FROM dead_letters WHERE topic LIKE '%gw-bazaar/events' "
                      "AND reason <> 'future_timestamp' GROUP BY reason")
    reasons = {r["reason"]: r["n"] for r in rows}
    assert sum(reasons.values()) == 5
    assert {"malformed_json", "not_an_object", "unsupported_version", "missing_field"} <= set(reasons)
