"""The PromQL of the alert rules and the dashboards, and the metric names in it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.support.deploy_tools import DEPLOY

RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
# Grafana's variables, replaced by a value of the same type before parsing
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$tenant": "shiraz"}
_NAME = re.compile(r"\b((?:parkbazaar|pg)_[a-z0-9_]+|up)\b(?!\s*\()")
_LABEL_CONTEXT = re.compile(r"(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{[^}]*\}")
_STRINGS = re.compile(r'"[^"]*"')


def rule_expressions() -> Iterator[tuple[str, str]]:
    """(where, expr) of every rule."""
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield f"{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    """(where, expr) of every panel target and query variable, Grafana variables substituted."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield f"{path.name}: {panel['title']}", grafana_to_promql(target["expr"])
        for var in board["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+), *\w+\)", var["query"]["query"])
            if match:
                yield f"{path.name}: ${var['name']}", match.group(1)


def grafana_to_promql(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Series names an expression reads (not label names, functions or strings)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _LABEL_CONTEXT.sub("()", text)
    return set(_NAME.findall(text))


def as_rule_file(expressions: list[tuple[str, str]], path: Path) -> Path:
    """A recording-rule file holding the expressions, so that promtool parses them."""
    rules = [{"record": f"check:expr_{i}", "expr": expr} for i, (_, expr) in enumerate(expressions)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    return path
