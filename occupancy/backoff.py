"""Retry delays and bounded retries (pure): one schedule for every retry loop.

``Backoff.delay(attempt, rand)`` is ``cap/2 + rand * cap/2`` with
``cap = min(max_s, initial_s * factor**attempt)`` ("equal jitter"): never
less than half the exponential step, so a flapping broker or database is not
hammered, and spread over the other half, so a hundred gateways of one city
that lost the same broker do not all come back in the same second.

``Retry`` is the state of one thing that keeps failing: how many attempts so
far, since when, and whether the bound (``give_up_after_s``) is spent. The
caller passes the clock and the random number, so both are tested without
waiting. Users: the MQTT supervisor (``occupancy.mqtt_client``, gateway and
ingest), ingest's database retries (``ingest.worker``) and the API's
database followers (``dashboard_api.broker_sync``, ``dashboard_api.live``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """The retry schedule: ``initial_s`` growing by ``factor`` up to ``max_s``."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s or self.factor < 1:
            raise ValueError("backoff needs 0 < initial_s <= max_s and factor >= 1")

    def cap(self, attempt: int) -> float:
        """The upper bound of the ``attempt``-th wait (0-based)."""
        exponent = min(max(attempt, 0), 64)  # no float overflow for a very long outage
        return min(self.max_s, self.initial_s * self.factor**exponent)

    def delay(self, attempt: int, rand: float) -> float:
        """The wait before retry ``attempt``; ``rand`` is uniform in [0, 1)."""
        cap = self.cap(attempt)
        return cap / 2 + min(max(rand, 0.0), 1.0) * cap / 2


@dataclass(slots=True)
class Retry:
    """Bounded retries of one operation: ``failed`` says how long to wait, or to give up.

    ``give_up_after_s`` bounds a run of failures: attempts go on until that
    long after its first failure (the last wait is shortened to end there),
    and a failure at or past the bound gives up. ``None``: never give up,
    every wait still at most ``backoff.max_s``. ``succeeded`` ends the run.
    """

    backoff: Backoff
    give_up_after_s: float | None = None
    attempts: int = 0  # failures in the current run
    failing_since: float | None = None

    def failed(self, now: float, rand: float) -> float | None:
        """Note a failure at ``now`` (monotonic seconds): the wait before the next
        attempt, or ``None`` when the bound is spent."""
        if self.failing_since is None:
            self.failing_since = now
        delay = self.backoff.delay(self.attempts, rand)
        if self.give_up_after_s is not None:
            left = self.failing_since + self.give_up_after_s - now
            if left <= 0:
                return None
            delay = min(delay, left)
        self.attempts += 1
        return delay

    def succeeded(self) -> None:
        """The operation worked: the next failure starts a new run from the first step."""
        self.attempts, self.failing_since = 0, None
