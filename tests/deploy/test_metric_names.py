"""Every metric an alert rule or a dashboard reads is one that the running system
exports: a real ingest process, a real API process and postgres_exporter with
deploy/postgres-exporter/queries.yaml, all on a PostgreSQL server started with the
deployment's config and roles (the exporter logs in as the read-only role). The
exporter's fleet and occupancy numbers are checked against the database and the API."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest.migrate import migrate_dsn
from occupancy.ids import GatewayId, SiteId, SpaceId, SpaceRef
from occupancy.model import OccupancyEvent, Source, SpaceState
from occupancy.topics import Channel, topic
from occupancy.wire import EventBatch, Status, encode_events, encode_status
from stack.embedded import Mosquitto, free_port
from tests.support.deploy_tools import DEPLOY, run, tool
from tests.support.ingest import IngestProcess, reap
from tests.support.mqtt import publish
from tests.support.pgcluster import Cluster
from tests.support.promql import dashboard_expressions, metric_names, rule_expressions
from tests.support.registry import GW, TENANT, batches, events_topic, make_events, seed_registry
from tests.support.waiting import wait_until, wait_until_sync

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]
# labels Prometheus adds to every series it scrapes, and the histogram bucket label
TARGET_LABELS = {"job", "instance", "le"}
Sample = tuple[str, dict[str, str], float]  # name, labels, value
Samples = dict[str, list[dict[str, str]]]  # metric name -> label sets exported


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A PostgreSQL on the deployment's config, roles made by the image's script:
    (the services' DSN, the exporter's DSN), both over TCP with passwords."""
    secrets = tmp_path / "secrets"
    run("sh", DEPLOY / "make-secrets.sh", secrets)
    cluster = Cluster().initdb().start(listen_addresses="'127.0.0.1'")
    try:
        cluster.psql("CREATE DATABASE parkbazaar")
        cluster.run("sh", DEPLOY / "postgres" / "initdb" / "10-parkbazaar-roles.sh", as_server=False,
                    env={"SECRETS_DIR": str(secrets), "POSTGRES_DB": "parkbazaar"})
        host = f"127.0.0.1:{cluster.port}"
        app = (secrets / "database_url").read_text().strip().replace("db:5432", host)
        monitor = (secrets / "monitor_db_password").read_text().strip()
        yield app, f"postgresql://parkbazaar_monitor:{monitor}@{host}/parkbazaar?sslmode=disable"
    finally:
        cluster.remove()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait(10)
    reap()


def test_every_metric_of_the_rules_and_dashboards_is_exported(
        server: tuple[str, str], broker: Mosquitto, topic_prefix: str,
        processes: list[subprocess.Popen[bytes]]) -> None:
    app_dsn, monitor_dsn = server
    asyncio.run(prepare(app_dsn))
    ingest_port, api_port, exporter_port = free_port(), free_port(), free_port()
    IngestProcess(app_dsn, broker.url, topic_prefix, f"ingest-{topic_prefix[:11]}",
                  metrics_port=str(ingest_port)).wait_ready()
    processes.append(start_api(app_dsn, api_port))
    processes.append(start_exporter(monitor_dsn, exporter_port))

    publish_traffic(broker.url, topic_prefix)
    asyncio.run(wait_stored(app_dsn))
    api = f"http://127.0.0.1:{api_port}"
    site = exercise_api(api)

    scraped = [*scrape(f"http://127.0.0.1:{ingest_port}/metrics"), *scrape(f"{api}/metrics")]
    from_db = wait_scrape(f"http://127.0.0.1:{exporter_port}/metrics", "parkbazaar_market_stalls")
    exported: Samples = {"up": [{}]}
    for name, labels, _ in [*scraped, *from_db]:
        exported.setdefault(name, []).append(labels)

    used = {(where, name) for where, expr in [*rule_expressions(), *dashboard_expressions()]
            for name in metric_names(expr)}
    assert len({n for _, n in used}) >= 20
    missing = sorted(f"{where}: {name}" for where, name in used if name not in exported)
    assert not missing, "read but not exported:\n" + "\n".join(missing)
    check_labels(exported)

    # the exporter counts as the API does (its own `server` label set aside)
    value = {(name, tuple(sorted((k, x) for k, x in labels.items() if k != "server"))): v
             for name, labels, v in from_db}
    tenant = (("kind", "parking"), ("tenant", TENANT))
    assert value[("parkbazaar_spaces_free", tenant)] == site["free"]
    assert value[("parkbazaar_spaces_occupied", tenant)] == site["occupied"]
    assert value[("parkbazaar_spaces_total", tenant)] == site["total"] == 50
    assert value[("parkbazaar_gateways_online", (("tenant", TENANT),))] == 1
    assert value[("parkbazaar_gateways_never_seen", (("tenant", TENANT),))] == 1  # gw2
    assert value[("parkbazaar_sites_stale", (("tenant", TENANT),))] == 0
    market = (("site", "bazaar"), ("tenant", TENANT))
    assert value[("parkbazaar_market_attended_today", market)] == 1
    assert value[("parkbazaar_market_stalls", market)] == 2
    assert value[("pg_up", ())] == 1


async def prepare(dsn: str) -> None:
    """Migrated; t1 with lot1 (50 spaces, gw1) and a market `bazaar` of two stalls on gw1."""
    await migrate_dsn(dsn, "plain")
    await seed_registry(dsn)
    con = await asyncpg.connect(dsn)
    try:
        site = await con.fetchval(
            "INSERT INTO sites (tenant_id, slug, kind, name, lat, lon) SELECT id, 'bazaar', 'market', "
            "'Bazaar', 29.6, 52.5 FROM tenants WHERE slug = $1 RETURNING id", TENANT)
        await con.execute("INSERT INTO spaces (site_id, slug) VALUES ($1, 'm1'), ($1, 'm2')", site)
        await con.execute("INSERT INTO gateway_spaces SELECT g.id, s.id FROM gateways g, spaces s "
                          "WHERE g.slug = $1 AND s.site_id = $2", GW, site)
    finally:
        await con.close()


def publish_traffic(url: str, prefix: str) -> None:
    """gw1's birth, 120 events on lot1, one stall arriving at the market, one garbage message."""
    now = datetime.now(UTC).replace(microsecond=0)
    status = topic(TENANT, GW, Channel.STATUS, prefix)
    publish(url, [(status, encode_status(Status(online=True, boot=1, at=now)))], retain=True)
    stall = OccupancyEvent(seq=1000, space=SpaceRef(SiteId("bazaar"), SpaceId("m1")),
                           state=SpaceState.OCCUPIED, at=now - timedelta(seconds=5), source=Source.SENSOR)
    messages = [(events_topic(prefix), p) for p in batches(make_events(120), 20)]
    messages.append((events_topic(prefix), encode_events(EventBatch(GatewayId(GW), 1, (stall,)))))
    messages.append((events_topic(prefix), b"{not json"))
    publish(url, messages)


async def wait_stored(dsn: str) -> None:
    con = await asyncpg.connect(dsn)

    async def stored() -> bool:
        return bool(await con.fetchval("SELECT count(*) FROM occupancy_events") >= 121
                    and await con.fetchval("SELECT count(*) FROM dead_letters")
                    and await con.fetchval("SELECT bool_or(online) FROM gateways"))

    try:
        await wait_until(stored, 60, "ingest storing the traffic")
    finally:
        await con.close()


def start_api(dsn: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PARKBAZAAR_DATABASE_URL": dsn}
    command = [sys.executable, "-m", "parkbazaar", "api", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_exporter(dsn: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATA_SOURCE_NAME": dsn}
    return subprocess.Popen(
        [tool("prometheus-postgres-exporter"), f"--web.listen-address=127.0.0.1:{port}",
         f"--extend.query-path={DEPLOY / 'postgres-exporter' / 'queries.yaml'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def exercise_api(base: str) -> dict[str, int]:
    """Requests of a few kinds, so that the request metrics carry samples; returns lot1."""
    with httpx.Client(base_url=base, timeout=5) as client:

        def ready() -> bool:
            try:
                return client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until_sync(ready, 60, "the API ready")
        assert client.get("/livez").status_code == 200
        assert client.get(f"/v1/sites/{TENANT}/no-such-site").status_code == 404
        assert client.get("/v1/sites").status_code == 200
        lot = client.get(f"/v1/sites/{TENANT}/lot1")
        assert lot.status_code == 200
        data: dict[str, int] = lot.json()
        return data


def scrape(url: str) -> list[Sample]:
    families = text_string_to_metric_families(httpx.get(url, timeout=10).text)
    return [(s.name, dict(s.labels), s.value) for f in families for s in f.samples]


def wait_scrape(url: str, marker: str) -> list[Sample]:
    """Scrape until ``marker`` is among the samples (the exporter connects lazily)."""
    samples: list[Sample] = []

    def present() -> bool:
        nonlocal samples
        try:
            samples = scrape(url)
        except httpx.TransportError:
            return False
        return any(name == marker for name, _, _ in samples)

    wait_until_sync(present, 60, f"{marker} at {url}")
    return samples


_SELECTOR = re.compile(r"\b([a-z_][a-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def check_labels(exported: Samples) -> None:
    """A label a selector matches on is one its metric carries; a grouping label is
    carried by some metric of the same expression."""
    problems = []
    for where, expr in [*rule_expressions(), *dashboard_expressions()]:
        names = metric_names(expr)
        carried = TARGET_LABELS | {k for n in names for labels in exported.get(n, []) for k in labels}
        for metric, body in _SELECTOR.findall(expr):
            have = TARGET_LABELS | {k for labels in exported.get(metric, []) for k in labels}
            problems += [f"{where}: {metric} has no label {label}" for label in _MATCHER.findall(body)
                         if label not in have]
        for group in _GROUPING.findall(expr):
            problems += [f"{where}: no metric carries {label}" for label in re.findall(r"\w+", group)
                         if label not in carried]
    assert not problems, "\n".join(problems)
