"""The outbox worker's circuit breaker for its push target (one worker pushes to one server).

States: ``half-open`` at the start (the target is unknown: the first push is a probe, so a worker
started during an outage charges no entry an attempt); ``closed`` (claim and push as usual);
``open`` after ``threshold`` consecutive target
failures (connection refused or reset, timeout, 429 or 5xx): no entry is claimed until the probe
delay has passed, then ``half-open``: one entry is pushed as the probe; success closes the circuit,
another target failure opens it again with the next, longer delay (the one
``backoff.Backoff`` policy, capped).
``paused`` after a 401/403: the credentials are wrong, retrying entries cannot help and must not
dead-letter them; the worker probes at the longest delay only (a server-side fix is picked up) and
logs the state. Pure: the clock is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_iastm.backoff import Backoff

CLOSED, OPEN, HALF_OPEN, PAUSED = "closed", "open", "half-open", "paused"


@dataclass
class Circuit:
    """Failure counting and probe timing for one push target."""

    threshold: int = 3
    probe: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=60.0, jitter=0.1))
    state: str = HALF_OPEN
    failures: int = 0
    probes: int = 0
    next_probe_at: float = 0.0

    def allows(self, now: float) -> bool:
        """May the worker claim an entry now? (An open circuit turns half-open when due.)"""
        if self.state in (OPEN, PAUSED) and now >= self.next_probe_at:
            self.state = HALF_OPEN
        return self.state in (CLOSED, HALF_OPEN)

    def wait(self, now: float) -> float:
        """Seconds until the next probe (0 when claims are allowed)."""
        return 0.0 if self.state in (CLOSED, HALF_OPEN) else max(0.0, self.next_probe_at - now)

    @property
    def counting(self) -> bool:
        """Does a failure now count against the entry's attempts? Not while probing."""
        return self.state == CLOSED

    def success(self) -> str:
        """The target answered (any answer that is not a target failure); returns the state."""
        self.state, self.failures, self.probes = CLOSED, 0, 0
        return self.state

    def failure(self, now: float) -> str:
        """A target failure; returns the state (``open`` once tripped)."""
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.threshold:
            self.probes += 1
            self.state = OPEN
            self.next_probe_at = now + self.probe.delay(self.probes)
        return self.state

    def pause(self, now: float) -> str:
        """The target refused our credentials (401/403)."""
        self.state = PAUSED
        self.next_probe_at = now + self.probe.cap
        return self.state


__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "PAUSED", "Circuit"]
