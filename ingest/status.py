"""Which gateway status wins: the rule over ``boot`` (pure; docs/design.md).

A gateway's ``boot`` rises by one on every start and every MQTT session, and a
status (birth or last will) names the session it belongs to. The rule keeps the
order-independence the design needs (a stale will, redelivered or committed
late, never ends a newer session) without letting one forged number decide
for ever:

- same boot: the same session; a death wins over a birth, and a repeat changes
  nothing (not even ``status_at``);
- a boot above the stored one by at most ``MAX_BOOT_JUMP``: a newer session;
- a birth, when the stored status is at least ``reset_after`` old: trusted
  whatever its boot (the gateway's counter was reset, or a forged boot got
  stored): a real gateway recovers at its next session;
- any other lower boot: a stale status, ignored;
- any other higher boot: refused (``boot_jump``) and dead-lettered. A death
  can never jump: a forged ``boot`` 2**31-1 with ``online: false`` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# Sessions a gateway may start between two statuses ingest sees. Ingest sees
# every birth (QoS 1, persistent session), so real jumps are 1, or a few after
# a flapping link lost births; past this, only a birth after a quiet spell counts.
MAX_BOOT_JUMP = 1000


class Verdict(StrEnum):
    APPLY = "apply"
    STALE = "stale"
    JUMP = "boot_jump"


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """What ``gateways`` holds: ``boot`` -1 and ``at`` None before any status."""

    online: bool
    boot: int
    at: datetime | None


def decide(stored: GatewayStatus, *, online: bool, boot: int, now: datetime,
           reset_after: timedelta) -> tuple[Verdict, GatewayStatus]:
    """The verdict on a status received at ``now``, and the status stored after it."""
    if boot == stored.boot:
        merged = stored.online and online
        if merged == stored.online:
            return Verdict.STALE, stored
        return Verdict.APPLY, GatewayStatus(merged, boot, now)
    if stored.boot < boot <= stored.boot + MAX_BOOT_JUMP:
        return Verdict.APPLY, GatewayStatus(online, boot, now)
    quiet = stored.at is None or now - stored.at >= reset_after
    if online and quiet:
        return Verdict.APPLY, GatewayStatus(online, boot, now)
    return (Verdict.STALE if boot < stored.boot else Verdict.JUMP), stored
