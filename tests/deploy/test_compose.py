"""deploy/compose.yaml: valid against the Compose specification, and every file it
mounts parsed by the program that reads it (PostgreSQL, promtool, amtool, Caddy,
the shell); the PostgreSQL files by a real server, with the role script run on it."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from occupancy.config import load_settings
from parkbazaar.cli import build_parser
from tests.support.deploy_tools import DEPLOY, broker_layout, run, tool
from tests.support.pgcluster import Cluster

COMPOSE = DEPLOY / "compose.yaml"
IMAGE = "${PARKBAZAAR_IMAGE:-parkbazaar:0.1.0}"
# each file or folder compose mounts -> the test here that has its reader parse it
READERS = {
    "./postgres/postgresql.conf": "test_postgres_starts_on_the_mounted_config_and_the_role_script_runs",
    "./postgres/pg_hba.conf": "test_postgres_starts_on_the_mounted_config_and_the_role_script_runs",
    "./postgres/initdb": "test_postgres_starts_on_the_mounted_config_and_the_role_script_runs",
    "./prometheus/prometheus.yml": "test_promtool_accepts_the_prometheus_config_and_its_rules",
    "./prometheus/rules": "test_promtool_accepts_the_prometheus_config_and_its_rules",
    "./alertmanager/alertmanager.yml": "test_amtool_accepts_the_alertmanager_config",
    "./caddy/Caddyfile": "test_caddy_reads_the_caddyfile_and_proxies_both_api_processes",
    "./postgres-exporter/queries.yaml": "tests/deploy/test_metric_names.py runs postgres_exporter on it",
    "./grafana/provisioning": "tests/deploy/test_dashboards.py",
    "./grafana/dashboards": "tests/deploy/test_dashboards.py",
    "./backup/pb-backup": "test_shell_scripts_pass_shellcheck (and tests/deploy/test_backup.py)",
    "./backup/pb-restore": "test_shell_scripts_pass_shellcheck (and tests/deploy/test_backup.py)",
}
SHELL_SCRIPTS = [DEPLOY / "backup" / "pb-backup", DEPLOY / "backup" / "pb-restore",
                 DEPLOY / "docker" / "entrypoint.sh", DEPLOY / "make-secrets.sh",
                 DEPLOY / "postgres" / "initdb" / "10-parkbazaar-roles.sh"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services_of_image(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if s.get("image") == IMAGE}


def test_compose_file_follows_the_compose_specification() -> None:
    run(sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE)


def test_every_mounted_file_exists_and_has_a_reader_under_test(compose: dict[str, Any]) -> None:
    mounted = {v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])
               if v.startswith("./")}
    assert mounted == set(READERS), "a new mount needs its reader in READERS and a test"
    for path in mounted:
        assert (DEPLOY / path).exists(), path


def test_secrets_come_from_files_and_never_stand_in_the_file(compose: dict[str, Any]) -> None:
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/"), name
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|PASS$|DATABASE_URL|MQTT_URL", key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], (name, secret)
    assert "/run/secrets/" in (DEPLOY / "caddy" / "Caddyfile").read_text()


def test_each_parkbazaar_service_runs_a_real_command(compose: dict[str, Any]) -> None:
    parser = build_parser()
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for service in services_of_image(compose).values():
        args = service["command"]
        if args[0] == "broker" and "broker" not in commands:
            continue  # `parkbazaar broker` lands with issue 12; then these args are parsed too
        parser.parse_args(args)  # exits (fails the test) on an unknown command or option


def test_migrations_run_only_in_the_migrate_job_and_everything_waits_for_it(compose: dict[str, Any]) -> None:
    for name, service in services_of_image(compose).items():
        if name == "migrate":
            assert service["command"] == ["migrate"] and service["restart"] == "no"
            assert service["depends_on"]["db"]["condition"] == "service_healthy"
            continue
        assert "migrate" not in service["command"]
        assert "migrate" in waits_for(compose, name), name
    direct = compose["services"]["ingest-1"]["depends_on"]["migrate"]
    assert direct["condition"] == "service_completed_successfully"


def waits_for(compose: dict[str, Any], name: str) -> set[str]:
    """Every service ``name`` waits for, directly or through another."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dep in compose["services"][todo.pop()].get("depends_on", {}):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_two_ingest_workers_with_their_own_sessions_and_scraped(compose: dict[str, Any]) -> None:
    workers = {n: s for n, s in services_of_image(compose).items() if s["command"] == ["ingest"]}
    assert len(workers) == 2
    ids = {s["environment"]["PARKBAZAAR_INGEST__CLIENT_ID"] for s in workers.values()}
    assert len(ids) == 2
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {j["job_name"]: set(j["static_configs"][0]["targets"]) for j in prometheus["scrape_configs"]}
    assert targets["parkbazaar-ingest"] == {
        f"{n}:{s['environment']['PARKBAZAAR_INGEST__METRICS_PORT']}" for n, s in workers.items()}
    apis = {n for n, s in services_of_image(compose).items() if s["command"][0] == "api"}
    assert len(apis) == 2 and targets["parkbazaar-api"] == {f"{n}:8000" for n in apis}
    for job in targets.values():
        for target in job:
            host = target.split(":")[0]
            assert host == "localhost" or host in compose["services"], target


def test_promtool_accepts_the_prometheus_config_and_its_rules() -> None:
    out = run(tool("promtool"), "check", "config", DEPLOY / "prometheus" / "prometheus.yml").stdout
    assert "SUCCESS" in out and "rules found" in out


def test_amtool_accepts_the_alertmanager_config() -> None:
    run(tool("amtool"), "check-config", DEPLOY / "alertmanager" / "alertmanager.yml")


def test_caddy_reads_the_caddyfile_and_proxies_both_api_processes() -> None:
    adapted = run(tool("caddy"), "adapt", "--adapter", "caddyfile", "--config",
                  DEPLOY / "caddy" / "Caddyfile").stdout
    for needle in ('"dial":"api-1:8000"', '"dial":"api-2:8000"', '"uri":"/readyz"', '"flush_interval":-1',
                   '"dial":"grafana:3000"'):
        assert needle in adapted.replace(" ", ""), needle


def test_shell_scripts_pass_shellcheck() -> None:
    run(tool("shellcheck"), *SHELL_SCRIPTS)


@pytest.mark.slow
def test_postgres_starts_on_the_mounted_config_and_the_role_script_runs(tmp_path: Path) -> None:
    """The server reads postgresql.conf and pg_hba.conf; the image's init script
    creates the roles from secrets that make-secrets.sh wrote; the services' DSN
    and the exporter's role then log in with passwords over TCP."""
    secrets = tmp_path / "secrets"
    run("sh", DEPLOY / "make-secrets.sh", secrets)
    assert {p.name for p in secrets.iterdir()} >= {"database_url", "parkbazaar_db_password",
                                                   "monitor_db_password", "backup_pgpass"}
    assert all(p.stat().st_mode & 0o077 == 0 for p in secrets.iterdir())
    cluster = Cluster()
    try:
        cluster.initdb().start(listen_addresses="'127.0.0.1'")
        cluster.psql("CREATE DATABASE parkbazaar")
        cluster.run("sh", DEPLOY / "postgres" / "initdb" / "10-parkbazaar-roles.sh", as_server=False,
                    env={"SECRETS_DIR": str(secrets), "POSTGRES_DB": "parkbazaar"})
        dsn = (secrets / "database_url").read_text().strip().replace("@db:5432", f"@127.0.0.1:{cluster.port}")
        monitor = (secrets / "monitor_db_password").read_text().strip()
        asyncio.run(_log_in(dsn, f"postgresql://parkbazaar_monitor:{monitor}@127.0.0.1:{cluster.port}/parkbazaar"))
    finally:
        cluster.remove()


async def _log_in(app_dsn: str, monitor_dsn: str) -> None:
    con = await asyncpg.connect(app_dsn)
    try:
        await con.execute("CREATE TABLE probe (x int); INSERT INTO probe VALUES (1)")
    finally:
        await con.close()
    con = await asyncpg.connect(monitor_dsn)
    try:  # default privileges: what the app role creates, the monitor reads
        assert await con.fetchval("SELECT count(*) FROM probe") == 1
        assert await con.fetchval("SELECT pg_has_role('pg_monitor', 'member')")
    finally:
        await con.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(app_dsn.replace("parkbazaar:", "parkbazaar:wrong", 1))


def test_each_parkbazaar_service_environment_is_valid_settings(
        compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, service in services_of_image(compose).items():
        for key in [k for k in os.environ if k.startswith("PARKBAZAAR_")]:
            monkeypatch.delenv(key)
        for key, value in service.get("environment", {}).items():
            if key.startswith("PARKBAZAAR_") and not key.endswith("_FILE"):
                monkeypatch.setenv(key, str(value))
        settings = load_settings()  # a wrong key or value raises ConfigError naming it
        if service["command"] == ["ingest"]:
            assert settings.ingest.metrics_port == 9102, name


def test_ingest_reaches_the_broker_on_the_tls_services_listener_inside_the_network(
        compose: dict[str, Any]) -> None:
    """``broker-config``'s command, parsed by the real CLI: the gateways' listener (8883,
    client ids replaced, published) and the services' (TLS, ids kept, not published),
    which the healthcheck watches and deploy/README.md's ingest URL names."""
    services = compose["services"]
    gateways, own = broker_layout(services["broker-config"]["command"]).listeners
    assert (gateways.port, gateways.tls, gateways.client_id_is_username) == (8883, True, True)
    assert (own.port, own.tls, own.client_id_is_username) == (8884, True, False)
    assert not own.require_certificate
    broker = services["broker"]
    assert [p.split(":")[-1] for p in broker["ports"]] == ["8883"]
    assert f"nc -z 127.0.0.1 {own.port}" in broker["healthcheck"]["test"][1]
    readme = (DEPLOY / "README.md").read_text()
    assert re.findall(r"'mqtts://ingest:%s@(\w+):(\d+)", readme) == [("broker", str(own.port))]
    for name in ("ingest-1", "ingest-2"):
        worker = services[name]
        assert worker["environment"]["PARKBAZAAR_INGEST__TLS_CA"] == "/run/secrets/broker_tls_ca", name
        assert "ingest_mqtt_url" in worker["secrets"] and set(worker["networks"]) & set(broker["networks"])
