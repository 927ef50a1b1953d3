"""The Grafana dashboards and their provisioning: every query is PromQL that
Prometheus parses, every panel uses the provisioned data source, the layout has
no overlapping panels, and the provider loads the folder compose mounts.
(Grafana itself is not installable here; these are the checks it would make.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy_tools import DEPLOY, run, tool
from tests.support.promql import DASHBOARDS, as_rule_file, dashboard_expressions

PROVISIONING = DEPLOY / "grafana" / "provisioning"
GRID_WIDTH = 24


def board(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_promql_of_every_panel_parses(tmp_path: Path) -> None:
    expressions = list(dashboard_expressions())
    assert len(expressions) >= 20
    run(tool("promtool"), "check", "rules", as_rule_file(expressions, tmp_path / "panels.yml"))


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_panels_use_the_provisioned_data_source_and_do_not_overlap(path: Path) -> None:
    sources = yaml.safe_load((PROVISIONING / "datasources" / "parkbazaar.yaml").read_text())["datasources"]
    uids = {s["uid"] for s in sources}
    dash = board(path)
    assert dash["uid"] == path.stem and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert all(t["datasource"]["uid"] in uids for t in panel["targets"]), panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= GRID_WIDTH, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_the_provider_loads_the_folder_compose_mounts() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "parkbazaar.yaml").read_text())["providers"][0]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    mounts = dict(v.split(":")[:2] for v in volumes if v.startswith("./"))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_the_operators_and_the_organisation_get_what_the_issue_asks() -> None:
    text = {p.stem: p.read_text() for p in DASHBOARDS}
    for needle in ("parkbazaar_ingest_events_total", "parkbazaar_ingest_last_commit_timestamp_seconds",
                   "parkbazaar_gateways_online", "parkbazaar_ingest_dead_letters_total"):
        assert needle in text["parkbazaar-operations"], needle
    for needle in ("parkbazaar_spaces_free", "parkbazaar_market_attended_today"):
        assert needle in text["parkbazaar-organisation"], needle
