"""The demo's traffic: one simulated site per gateway, live against a running stack.

Each site of the site file is simulated through its own gateway node
(``simulators.runner.run_simulation``), logged in with the credentials the
stack issued for that gateway, until ``stop``. Two clocks (``demo_clock``):

- ``speed`` 1 (the default): the simulated day is today, on the real clock.
  The day so far, from ``--start`` (default 00:00 local), is played first in
  a few seconds with events at their simulated times, then it runs live. So
  every stored time is the simulated one: a stall's first arrival is when
  its vendor arrived in the model, history and utilization have the shape of
  the day.
- ``speed`` above 1: a time-lapse from ``--start`` (default 08:00, a Friday
  becomes Thursday) — livelier, but events carry the wall clock (a future
  time would be refused), so the times managers read are the real ones.
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


CATCH_UP_HEARTBEAT_S = 300.0  # below every example site's staleness bound; fewer events to catch up


def demo_clock(speed: float, hhmm: str | None, tz: str, now: datetime) -> tuple[datetime, bool]:
    """(where the simulated day starts, whether it is on the real clock and caught up first)."""
    if speed == 1:
        start = _today_at(hhmm or "00:00", tz, now)
        return (start - timedelta(days=1) if start > now else start), True
    return simulated_start(hhmm or "08:00", tz, now), False


def _today_at(hhmm: str, tz: str, now: datetime) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return now.astimezone(ZoneInfo(tz)).replace(hour=hour, minute=minute, second=0, microsecond=0)


def simulated_start(hhmm: str, tz: str, now: datetime) -> datetime:
    """Today at ``hhmm`` in the tenant's zone; a Friday (markets closed) becomes Thursday."""
    start = _today_at(hhmm, tz, now)
    return start - timedelta(days=1) if start.weekday() == 4 else start


async def play_sites(stack: Stack, site_file: SiteFile, *, speed: float, start: datetime,
                     stop: asyncio.Event, catch_up: bool = False) -> None:
    """Simulate every site of ``site_file`` until ``stop``; a failed site is logged, not fatal."""
    sims = [asyncio.create_task(_play_site(stack, site_file, site.id, speed, start, stop, catch_up),
                                name=f"sim-{site.id}")
            for site in site_file.sites]
    await asyncio.gather(*sims, return_exceptions=True)


async def _play_site(stack: Stack, site_file: SiteFile, site_id: str, speed: float,
                     start: datetime, stop: asyncio.Event, catch_up: bool) -> None:
    settings = stack.settings
    gateway = next(g.id for g in site_file.gateways if site_id in g.sites)
    login = stack.gateways.get((site_file.tenant.id, gateway))
    mqtt = settings.mqtt if login is None else replace(settings.mqtt, username=login[0], password=login[1])
    try:
        await run_simulation(site_file=site_file, site_id=site_id, gateway_id=gateway,
                             mqtt=mqtt, prefix=settings.topic_prefix,
                             state_dir=stack.data_dir / "gateways", speed=speed, stop=stop,
                             start_at=start, catch_up=catch_up,
                             heartbeat_s=CATCH_UP_HEARTBEAT_S if catch_up else 60.0)
    except Exception:
        log.exception("simulator of %s failed", site_id)
        raise
