"""deploy/k8s/prometheusrule.yaml is deploy/prometheus/rules/parkbazaar.yml wrapped
in a PrometheusRule (kustomize cannot embed a file in a custom resource).
``python -m tests.deploy.prometheusrule`` rewrites it; a test keeps them equal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules" / "parkbazaar.yml"
TARGET = REPO / "deploy" / "k8s" / "prometheusrule.yaml"
HEADER = ("# Generated from deploy/prometheus/rules/parkbazaar.yml by\n"
          "# `python -m tests.deploy.prometheusrule`; edit the rules there, not here.\n")


def resource(rules: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "parkbazaar", "labels": {"release": "kube-prometheus-stack"}},
            "spec": {"groups": rules["groups"]}}


def render() -> str:
    rules = yaml.safe_load(RULES.read_text())
    return HEADER + yaml.safe_dump(resource(rules), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    TARGET.write_text(render())
