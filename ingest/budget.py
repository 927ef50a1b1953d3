"""A rate cap on stored dead letters, per gateway (pure: the caller passes the clock).

A token bucket per key: ``burst`` dead letters at once, then ``rate_per_s``.
Keys are the provisioned gateways plus one shared key (``None``) for every
message that names no provisioned gateway (a bad topic, an unknown gateway),
so the table cannot grow with what a sender invents. Each ingest worker holds
its own budget: N workers store up to N times the rate.
"""

from __future__ import annotations

from collections.abc import Hashable

MAX_KEYS = 100_000  # a guard only: keys are provisioned gateways


class DeadLetterBudget:
    """``admit(key, now)`` is True while ``key`` has a token left."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s, self.burst = rate_per_s, burst
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key → (tokens, at)

    def admit(self, key: Hashable, now: float) -> bool:
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            self._buckets.clear()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate_per_s)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True
