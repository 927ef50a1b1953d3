"""``parkbazaar gateway run|check --config FILE``: the edge gateway of a site.

``run`` reads the gateway config (``gateway/config.py``; example:
``examples/gateway-central-lot.yaml``), polls its devices and publishes
until SIGTERM/Ctrl-C, which flushes what can be flushed and leaves the rest
in the outbox. ``check`` validates the file (keys, bindings, files it names)
and prints what the gateway would run, without connecting anywhere: for a
``chirpstack`` connection, each LoRaWAN sensor's binding (DevEUI → model or
``occupied_path`` → space).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from gateway import GatewayError
from gateway.config import ChirpstackDevice, GatewayConfig, GatewayConfigError, load_gateway_config
from gateway.service import GatewayService, ServiceStats
from parkbazaar.clikit import run_until_signalled


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("gateway", help="run or check an edge gateway")
    sub = p.add_subparsers(dest="gateway_command", metavar="ACTION", required=True)
    r = sub.add_parser("run", help="run the gateway of a config file until SIGTERM")
    r.add_argument("--config", dest="gateway_config", type=Path, required=True, metavar="FILE",
                   help="gateway config (YAML), e.g. examples/gateway-central-lot.yaml")
    r.add_argument("--flush-timeout", type=float, default=5.0, metavar="S",
                   help="on SIGTERM, wait at most S seconds for PUBACKs (default 5)")
    r.set_defaults(func=cmd_run)
    c = sub.add_parser("check", help="validate a gateway config file and show what it runs")
    c.add_argument("--config", dest="gateway_config", type=Path, required=True, metavar="FILE")
    c.set_defaults(func=cmd_check)


def _load(path: Path) -> GatewayConfig | None:
    try:
        return load_gateway_config(path)
    except GatewayConfigError as exc:
        print(f"parkbazaar gateway: configuration error\n{exc}", file=sys.stderr)
        return None


def describe(config: GatewayConfig) -> str:
    """A human summary of what the config runs."""
    mqtt = config.mqtt()
    lines = [
        f"gateway {config.tenant}/{config.gateway}: {len(config.bound_spaces())} spaces, "
        f"{len(config.devices)} devices",
        f"  broker {'mqtts' if mqtt.tls or config.tls() else 'mqtt'}://{mqtt.host}:{mqtt.port}"
        f" as {mqtt.username or '(anonymous)'}, client id {config.client_id()}",
        f"  outbox {config.outbox_path()} (at most {config.outbox.max_events} events)",
        f"  heartbeat {config.heartbeat_s:g}s, stale after {config.stale_after_s:g}s, "
        f"health every {config.health_s:g}s",
    ]
    for d in config.devices:
        if isinstance(d, ChirpstackDevice):
            lines += describe_chirpstack(config, d)
        else:
            lines.append(f"  device {d.id} ({d.kind}): {len(d.space_refs())} spaces, poll {d.poll_s:g}s")
    return "\n".join(lines)


def describe_chirpstack(config: GatewayConfig, d: ChirpstackDevice) -> list[str]:
    """A ChirpStack connection and each sensor's binding: DevEUI → model or path → space."""
    url = config.mqtt(d.broker)
    apps = ", ".join(d.application_ids())
    lines = [f"  device {d.id} (chirpstack): {len(d.all_sensors())} LoRaWAN sensors, "
             f"{'mqtts' if url.tls or config.tls(d.broker) else 'mqtt'}://{url.host}:{url.port} "
             f"as {url.username or '(anonymous)'}, application {apps}, topics "
             f"{d.topic_prefix}/{{application}}/device/+/event/{{up,join,status,ack,txack,log}}",
             f"    stale after {config.policy(d).stale_after_s:g}s, session expiry {d.session_expiry_s}s"
             + (f", sensors file {config.path(d.sensors_file)}" if d.sensors_file else "")
             + (f", site file {config.path(d.site_file)}" if d.site_file else "")]
    mine = {s.dev_eui for s in d.sensors}
    from_file = {s.dev_eui for s in d.file_sensors} - mine
    for s in d.all_sensors():
        how = f"model {s.model}" if s.model else f"path {s.occupied_path}"
        named = f" (id {s.id})" if s.id and s.id != s.dev_eui else ""
        origin = ("" if s.dev_eui in mine else "  [sensors file]" if s.dev_eui in from_file
                  else "  [site file]")
        lines.append(f"    {s.dev_eui}{named} → {how} → {s.space}{origin}")
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.gateway_config)
    if config is None:
        return 2
    print(describe(config))
    print("ok")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.gateway_config)
    if config is None:
        return 2
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stats: list[ServiceStats] = []

    async def main(stop: asyncio.Event) -> None:
        service = GatewayService(config, flush_timeout=args.flush_timeout)
        stats.append(await service.run(stop))

    try:
        run_until_signalled(main)
    except GatewayError as exc:
        print(f"parkbazaar gateway: {exc}", file=sys.stderr)
        return 1
    s = stats[0]
    print(f"gateway {config.gateway}: {s.changes} changes, {s.heartbeats} heartbeats, "
          f"{s.read_errors} read errors; boot {s.node.boot}, acked {s.node.acked}, "
          f"left in the outbox {s.node.depth}, dropped heartbeats {s.node.dropped_heartbeats}",
          flush=True)
    return 0
