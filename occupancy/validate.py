"""Checks of a decoded batch that need context: bindings and a clock.

Pure: the caller passes the set of spaces the gateway is bound to and ``now``.
Valid events are kept; each invalid one is returned with its index and reason,
so the message can be stored in ``dead_letters`` while its good events are not
held back (storing them again later is harmless: writes are idempotent).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime, timedelta

from occupancy.ids import SpaceRef
from occupancy.model import OccupancyEvent
from occupancy.wire import EventBatch, Reason

DEFAULT_MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking one batch."""

    accepted: tuple[OccupancyEvent, ...]
    rejected: tuple[tuple[int, Reason, str], ...]


def check_batch(
    batch: EventBatch,
    *,
    bound: Container[SpaceRef],
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> Checked:
    """Split a batch into events the gateway may report and rejected ones."""
    latest = now + max_skew
    accepted: list[OccupancyEvent] = []
    rejected: list[tuple[int, Reason, str]] = []
    for i, event in enumerate(batch.events):
        if event.space not in bound:
            rejected.append((i, Reason.SPACE_NOT_BOUND, f"{event.space} not bound to {batch.gateway}"))
        elif event.at > latest:
            rejected.append((i, Reason.FUTURE_TIMESTAMP, f"{event.at.isoformat()} > now + {max_skew}"))
        else:
            accepted.append(event)
    return Checked(tuple(accepted), tuple(rejected))
