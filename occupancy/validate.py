"""Checks of a decoded batch that need context: bindings and a clock.

Pure: the caller passes the set of spaces the gateway is bound to and ``now``.
An event is accepted only inside a window of time: not older than ``max_age``
(ingest passes its retention: an older event would land in storage that is
already dropped, or make storage for a day long gone) and not further ahead
than ``max_skew`` (a gateway clock a little fast is tolerated, no more).
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
from occupancy.wire import MIN_TIME, EventBatch, Reason

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
    max_age: timedelta | None = None,
) -> Checked:
    """Split a batch into events the gateway may report and rejected ones.

    ``max_age`` None: no lower bound but the wire's (``occupancy.wire.MIN_TIME``)."""
    latest = now + max_skew
    oldest = now - max_age if max_age is not None else MIN_TIME
    accepted: list[OccupancyEvent] = []
    rejected: list[tuple[int, Reason, str]] = []
    for i, event in enumerate(batch.events):
        if event.space not in bound:
            rejected.append((i, Reason.SPACE_NOT_BOUND, f"{event.space} not bound to {batch.gateway}"))
        elif event.at > latest:
            rejected.append((i, Reason.FUTURE_TIMESTAMP, f"{event.at.isoformat()} > now + {max_skew}"))
        elif event.at <= oldest:
            rejected.append((i, Reason.TOO_OLD, f"{event.at.isoformat()} <= now - {max_age}"))
        else:
            accepted.append(event)
    return Checked(tuple(accepted), tuple(rejected))
