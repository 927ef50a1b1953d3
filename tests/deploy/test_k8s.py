"""deploy/k8s (kustomize base) and deploy/k8s-overlays build with kubectl and validate
offline against the Kubernetes schemas (kubernetes-validate). The operators' custom
resources have no schema there and are skipped: see CUSTOM_RESOURCES."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from occupancy.config import load_settings
from tests.deploy.prometheusrule import TARGET as PROMETHEUS_RULE
from tests.deploy.prometheusrule import render
from tests.support.deploy_tools import DEPLOY, broker_layout, run, tool

KUBERNETES_VERSION = "1.30.0"
# validated by their operators' admission webhooks in a cluster, not here
CUSTOM_RESOURCES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("apps.emqx.io/v2beta1", "EMQX"),
}
BUILDS = {"base": DEPLOY / "k8s", "production": DEPLOY / "k8s-overlays" / "production"}


def build(path: Path) -> list[dict[str, Any]]:
    out = run(tool("kubectl"), "kustomize", path).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", params=sorted(BUILDS))
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return build(BUILDS[request.param])


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def test_every_built_manifest_validates_against_the_kubernetes_schema(
        manifests: list[dict[str, Any]]) -> None:
    checked = 0
    for doc in manifests:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCES:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 20


def test_only_the_listed_custom_resources_are_left_unvalidated(manifests: list[dict[str, Any]]) -> None:
    for doc in manifests:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCES:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{doc['kind']} {doc['apiVersion']} has no schema and is not listed: {exc}")


def test_api_has_probes_resources_autoscaler_and_disruption_budget(manifests: list[dict[str, Any]]) -> None:
    api = find(manifests, "Deployment", "parkbazaar-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    hpa = find(manifests, "HorizontalPodAutoscaler", "parkbazaar-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "parkbazaar-api" and hpa["spec"]["minReplicas"] >= 2
    pdb = find(manifests, "PodDisruptionBudget", "parkbazaar-api")
    assert pdb["spec"]["selector"] == api["spec"]["selector"]


def test_ingest_workers_keep_their_client_id_across_restarts(manifests: list[dict[str, Any]]) -> None:
    ingest = find(manifests, "StatefulSet", "parkbazaar-ingest")
    env = {e["name"]: e for e in ingest["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PARKBAZAAR_INGEST__CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    find(manifests, "PodDisruptionBudget", "parkbazaar-ingest")


def test_pods_run_as_non_root_with_a_read_only_root(manifests: list[dict[str, Any]]) -> None:
    for doc in manifests:
        spec = pod_spec(doc)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = (doc["metadata"]["name"], c["name"])
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, where
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_migrations_run_once_in_a_job(manifests: list[dict[str, Any]]) -> None:
    job = find(manifests, "Job", "parkbazaar-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    for doc in manifests:
        spec = pod_spec(doc)
        if spec is not None and doc["kind"] != "Job":
            assert all("migrate" not in c.get("args", []) for c in spec["containers"])


def test_every_secret_and_config_map_referenced_is_built_or_documented(
        manifests: list[dict[str, Any]]) -> None:
    built = {d["metadata"]["name"] for d in manifests if d["kind"] in ("ConfigMap", "Secret")}
    documented = (DEPLOY / "k8s" / "kustomization.yaml").read_text()
    operator_made = {"parkbazaar-db-app", "parkbazaar-backup-s3"}  # CloudNativePG's / the operator's
    for name in referenced(manifests):
        assert name in built or name in operator_made or f"#   {name} " in documented, name


def test_the_production_overlay_uses_the_operators() -> None:
    docs = build(BUILDS["production"])
    kinds = {d["kind"] for d in docs}
    assert {"Cluster", "ScheduledBackup", "EMQX"} <= kinds
    assert "CronJob" not in kinds, "CloudNativePG's backups replace the pg_dump CronJob"
    assert "parkbazaar-broker" not in {d["metadata"]["name"] for d in docs if d["kind"] == "StatefulSet"}
    cluster = find(docs, "Cluster", "parkbazaar-db")
    assert cluster["spec"]["instances"] >= 3 and cluster["spec"]["minSyncReplicas"] >= 1
    assert "parkbazaar-database" not in referenced(docs)


def test_the_prometheus_rule_is_the_rules_file() -> None:
    assert PROMETHEUS_RULE.read_text() == render(), (
        "deploy/k8s/prometheusrule.yaml is stale: python -m tests.deploy.prometheusrule")


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    workload = doc["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob")
    template = spec.get("template") if workload else None
    return template["spec"] if template else None


def referenced(docs: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for volume in spec.get("volumes", []):
            names.update(v.get("secretName") or v.get("name") for k, v in volume.items()
                         if k in ("secret", "configMap"))
        for c in spec.get("initContainers", []) + spec["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                for key in ("secretKeyRef", "configMapKeyRef"):
                    if key in ref:
                        names.add(ref[key]["name"])
    return names


def test_the_settings_file_of_the_pods_loads() -> None:
    settings = load_settings(DEPLOY / "k8s" / "parkbazaar.yaml")
    assert (settings.ingest.metrics_host, settings.ingest.metrics_port) == ("0.0.0.0", 9102)
    assert settings.api.host == "0.0.0.0"


INGEST_PODS = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "parkbazaar-ingest"}}}


def rules_for(policy: dict[str, Any], port: int) -> list[dict[str, Any]]:
    return [r for r in policy["spec"]["ingress"] if any(p["port"] == port for p in r.get("ports", []))]


def test_ingest_reaches_the_broker_on_the_services_listener_and_nothing_else_does() -> None:
    """The init container's args parse with the real CLI into the gateways' listener (8883,
    client ids replaced) and the services' (8884, TLS, ids kept); 8884 is on a ClusterIP
    Service only, the policy admits only ingest pods to it, the secret's URL names it."""
    docs = build(BUILDS["base"])
    pod = find(docs, "StatefulSet", "parkbazaar-broker")["spec"]["template"]["spec"]
    gateways, services = broker_layout(pod["initContainers"][0]["args"]).listeners
    assert (gateways.port, gateways.tls, gateways.client_id_is_username) == (8883, True, True)
    assert (services.port, services.tls, services.client_id_is_username) == (8884, True, False)
    assert not services.require_certificate
    ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    service = find(docs, "Service", "parkbazaar-broker-services")
    assert service["spec"]["type"] == "ClusterIP"
    assert [ports[p["targetPort"]] for p in service["spec"]["ports"]] == [8884]
    public = find(docs, "Service", "parkbazaar-broker")
    assert [ports[p["targetPort"]] for p in public["spec"]["ports"]] == [8883]
    policy = find(docs, "NetworkPolicy", "parkbazaar-broker")
    assert [r.get("from") for r in rules_for(policy, 8884)] == [[INGEST_PODS]]
    assert [r.get("from") for r in rules_for(policy, 8883)] == [None]  # gateways, from anywhere
    documented = (DEPLOY / "k8s" / "kustomization.yaml").read_text()
    assert "ingest-url  mqtts://ingest:…@parkbazaar-broker-services:8884" in documented


def test_with_emqx_ingest_keeps_its_url_on_a_services_listener_of_its_own() -> None:
    docs = build(BUILDS["production"])
    service = find(docs, "Service", "parkbazaar-broker-services")
    emqx = find(docs, "EMQX", "parkbazaar-broker")
    assert service["spec"]["selector"] == {"apps.emqx.io/instance": "parkbazaar-broker"}
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [8884]
    config = " ".join(emqx["spec"]["config"]["data"].split())
    # the gateways' listener in the zone that replaces client ids; the services' in the default
    for text in ('listeners.ssl.default { bind = "0.0.0.0:8883" zone = gateways',
                 'listeners.ssl.services { bind = "0.0.0.0:8884" ssl_options',
                 "zones.gateways.mqtt.use_username_as_clientid = true"):
        assert text in config, text
    policy = find(docs, "NetworkPolicy", "parkbazaar-emqx")
    assert [r.get("from") for r in rules_for(policy, 8884)] == [[INGEST_PODS]]
