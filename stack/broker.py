"""The broker of a run: the configured one, or one of our own that admits nobody anonymous.

Our own Mosquitto runs the files ``parkbazaar broker config`` would write
(``dashboard_api.broker_sync.write_config``) from the registry, after fresh
credentials were issued in it: each gateway of the site files its own, and
ingest the service account ``demo-ingest``. The secrets go to
``DATA_DIR/credentials.json`` (mode 0600). Where mosquitto is not installed an
in-process amqtt broker stands in: MQTT 3.1.1 only, a username required but not
checked (amqtt cannot read the registry's ``$7$`` hashes nor a per-user ACL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from dashboard_api.broker import BrokerLayout, Listener, gateway_username
from dashboard_api.broker_registry import issue_local
from dashboard_api.broker_sync import write_config
from occupancy.config import Settings
from occupancy.sitefile import SiteFile
from stack.db import connected
from stack.embedded import Mosquitto, free_port, mosquitto_binary, wait_port

log = logging.getLogger(__name__)

BrokerKind = Literal["auto", "mosquitto", "amqtt", "none"]
GwKey = tuple[str, str]  # (tenant, gateway)
Logins = Mapping[GwKey, tuple[str, str]]  # (tenant, gateway) → (username, secret)
INGEST_ACCOUNT = "demo-ingest"


@dataclass(frozen=True)
class RunBroker:
    """Where ingest connects (``url``, with its credentials), and each gateway's own login."""

    url: str | None
    protocol: int
    gateways: Logins = field(default_factory=dict)
    credentials: Path | None = None  # the file holding the secrets, when we issued them


@contextlib.asynccontextmanager
async def run_broker(settings: Settings, kind: BrokerKind, data_dir: Path, dsn: str,
                     site_files: Sequence[SiteFile]) -> AsyncIterator[RunBroker]:
    """The configured broker; else none (``kind="none"``), or our own with issued credentials."""
    if settings.mqtt_url or kind == "none":
        yield RunBroker(settings.mqtt_url, settings.ingest.protocol)
        return
    use_mosquitto = kind == "mosquitto" or (kind == "auto" and mosquitto_binary() is not None)
    folder, port = data_dir / "mosquitto", free_port()
    # one listener, the gateways' kind (client ids replaced by usernames): the demo runs one ingest
    layout = BrokerLayout(folder, [Listener("127.0.0.1", port, client_id_is_username=True)], _whoami(),
                          folder / "mosquitto.log")
    gateways = [(sf.tenant.id, g.id) for sf in site_files for g in sf.gateways]
    async with connected(dsn) as con:
        ingest, secrets = await issue_local(con, gateways, INGEST_ACCOUNT, actor="demo")
        if use_mosquitto:
            await write_config(con, layout, settings.topic_prefix, None)
    logins = {key: (gateway_username(*key), secret) for key, secret in secrets.items()}
    if use_mosquitto:
        with Mosquitto(folder, port=port, config=layout.path("mosquitto.conf")) as m:
            url = with_login(m.url, INGEST_ACCOUNT, ingest)
            saved = save_credentials(data_dir, url, logins, layout.out)
            yield RunBroker(url, 5, logins, saved)
        return
    async with amqtt_broker() as plain:
        log.warning("amqtt cannot check passwords or a per-user ACL: install mosquitto for "
                    "a broker that enforces the registry's credentials")
        url = with_login(plain, INGEST_ACCOUNT, ingest)
        saved = save_credentials(data_dir, url, logins, None)
        yield RunBroker(f"{url}?protocol=4", 4, logins, saved)


def _whoami() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def with_login(url: str, username: str, secret: str) -> str:
    """``mqtt://user:secret@host:port`` (secrets are URL-safe as they are)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{quote(username, safe='')}:{secret}@{rest}"


def save_credentials(data_dir: Path, ingest_url: str, gateways: Logins, broker_dir: Path | None) -> Path:
    """Write the issued secrets to ``data_dir/credentials.json`` (0600); its path."""
    path = data_dir / "credentials.json"
    data = {"ingest_url": ingest_url, "broker_files": str(broker_dir) if broker_dir else None,
            "gateways": {user: secret for user, secret in gateways.values()}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    return path


@contextlib.asynccontextmanager
async def amqtt_broker() -> AsyncIterator[str]:
    """An in-process MQTT 3.1.1 broker (amqtt) on a free port; clients must give a username."""
    from amqtt.broker import Broker

    port = free_port()
    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
    }
    b = Broker(config)
    await b.start()
    await asyncio.to_thread(wait_port, "127.0.0.1", port)
    log.info("in-process amqtt broker at 127.0.0.1:%d (MQTT 3.1.1)", port)
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        await b.shutdown()
