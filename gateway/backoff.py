"""Reconnection delays: exponential, bounded, with jitter (pure).

``delay(attempt, rand)`` is ``cap/2 + rand * cap/2`` with
``cap = min(max_s, initial_s * factor**attempt)`` ("equal jitter"): never
less than half the exponential step, so a flapping broker is not hammered,
and spread over the other half, so a hundred gateways of one city that lost
the same broker do not all come back in the same second.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """The reconnect schedule: ``initial_s`` doubling (``factor``) up to ``max_s``."""

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
