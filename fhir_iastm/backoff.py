"""The one backoff policy: how long to wait before retry n.

The FHIR client (idempotent requests), the push (re-reads after a 409/412) and the outbox worker
(per-entry retries) each hold a :class:`Backoff` with their own numbers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (1-based): ``min(cap, base * factor**(n-1))``, ± ``jitter`` share."""

    base: float = 2.0
    factor: float = 2.0
    cap: float = 600.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("Backoff needs base, cap >= 0, factor >= 1 and jitter in [0, 1]")

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt."""
        raw = float(min(self.cap, self.base * self.factor ** max(0, attempt - 1)))
        if not self.jitter:
            return raw
        return raw * (1 + self.jitter * (2 * rng() - 1))


__all__ = ["Backoff"]
