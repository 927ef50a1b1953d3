"""The alert rules: promtool's unit tests (deploy/prometheus/tests) pass, every alert
has one, and every alert carries the labels and annotations an operator needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.deploy_tools import DEPLOY, run, tool
from tests.support.promql import RULE_FILES, metric_names, rule_expressions

TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
# what the issue asks the rules to watch -> the alerts that do
REQUIRED = {
    "ingest lag": "ParkbazaarIngestLagging", "queue depth": "ParkbazaarIngestQueueDeep",
    "dead-letter rate": "ParkbazaarDeadLetters", "database retries": "ParkbazaarDatabaseRetries",
    "gateways offline": "ParkbazaarGatewaysOffline", "sites stale": "ParkbazaarSitesStale",
    "API error rate": "ParkbazaarApiErrors", "API p99": "ParkbazaarApiSlow",
}


def alerts() -> dict[str, dict[str, object]]:
    return {r["alert"]: r for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"]
            for r in g["rules"] if "alert" in r}


@pytest.mark.parametrize("test_file", TESTS, ids=[t.name for t in TESTS])
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    out = run(tool("promtool"), "test", "rules", test_file, cwd=DEPLOY / "prometheus").stdout
    assert "SUCCESS" in out


def test_promtool_accepts_the_rule_files() -> None:
    run(tool("promtool"), "check", "rules", *RULE_FILES)


def test_every_alert_is_unit_tested_firing() -> None:
    fired = set()
    for path in TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            fired |= {t["alertname"] for t in case.get("alert_rule_test", []) if t["exp_alerts"]}
    assert set(alerts()) == fired


def test_the_rules_watch_what_the_issue_asks() -> None:
    assert set(REQUIRED.values()) <= set(alerts())


def test_every_alert_has_a_severity_and_says_what_to_do() -> None:
    for name, rule in alerts().items():
        labels, notes = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and labels["severity"] in ("warning", "critical"), name
        assert isinstance(notes, dict) and notes["summary"] and notes["description"], name


def test_every_rule_reads_at_least_one_metric() -> None:
    for where, expr in rule_expressions():
        assert metric_names(expr), where
