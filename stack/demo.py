"""The demo's traffic: one simulated site per gateway, live against a running stack.

Each site of the site file is simulated in scaled real time through its own
gateway node (``simulators.runner.run_simulation``), logged in with the
credentials the stack issued for that gateway, from a simulated morning on,
until ``stop``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from occupancy.sitefile import SiteFile
from simulators.runner import run_simulation
from stack.local import Stack

log = logging.getLogger(__name__)


def simulated_start(hhmm: str, tz: str, now: datetime) -> datetime:
    """Today at ``hhmm`` in the tenant's zone; a Friday (markets closed) becomes Thursday."""
    local = now.astimezone(ZoneInfo(tz))
    hour, minute = (int(x) for x in hhmm.split(":"))
    start = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return start - timedelta(days=1) if start.weekday() == 4 else start


async def play_sites(stack: Stack, site_file: SiteFile, *, speed: float, start: datetime,
                     stop: asyncio.Event) -> None:
    """Simulate every site of ``site_file`` until ``stop``; a failed site is logged, not fatal."""
    sims = [asyncio.create_task(_play_site(stack, site_file, site.id, speed, start, stop),
                                name=f"sim-{site.id}")
            for site in site_file.sites]
    await asyncio.gather(*sims, return_exceptions=True)


async def _play_site(stack: Stack, site_file: SiteFile, site_id: str, speed: float,
                     start: datetime, stop: asyncio.Event) -> None:
    settings = stack.settings
    gateway = next(g.id for g in site_file.gateways if site_id in g.sites)
    login = stack.gateways.get((site_file.tenant.id, gateway))
    mqtt = settings.mqtt if login is None else replace(settings.mqtt, username=login[0], password=login[1])
    try:
        await run_simulation(site_file=site_file, site_id=site_id, gateway_id=gateway,
                             mqtt=mqtt, prefix=settings.topic_prefix,
                             state_dir=stack.data_dir / "gateways", speed=speed, stop=stop,
                             start_at=start)
    except Exception:
        log.exception("simulator of %s failed", site_id)
        raise
