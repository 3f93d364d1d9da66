"""The outbox worker — claim an entry, push it, record the outcome.

The store (``ports.OutboxPort``) and the push function are injected, so the worker knows
nothing of HTTP or SQL (``service`` passes them; tests pass fakes). Run several workers, on
several machines: the store's per-session leases keep one session's versions in record_version
order and never in flight twice at once (docs/decisions.md#d9).

Outcomes: pushed / unchanged / superseded -> done; ``rejected`` -> dead letter with the server's
OperationOutcome; ``FhirServerError`` and its subclasses (timeouts, 429/5xx, 409) and unexpected
exceptions -> retry later with per-entry exponential backoff (honouring a ``retry_after`` the error
may carry) until ``max_attempts``, then dead letter. The target's health is the circuit's business
(``sync.circuit``): after ``threshold`` consecutive target failures (unreachable, timeout, 429/5xx)
the worker claims nothing and probes the target with one entry at growing delays, and an entry
whose probe fails keeps its attempt; a 401/403 pauses the target (entries keep their attempts, no
dead letter). ``run(once=True)`` returns as soon as the circuit is open or paused.
SIGTERM/SIGINT finish the push in hand and stop (the lease heartbeat and the signal handling are
in ``sync.lifecycle``). Log lines are JSON with no PHI: the session appears only as a hash prefix.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fhir_iastm.backoff import Backoff
from fhir_iastm.errors import (
    ConfigError,
    FhirAuthError,
    FhirServerError,
    FhirUnavailableError,
    IastmError,
    Issue,
    LeaseLostError,
    operation_outcome,
)
from fhir_iastm.sync.circuit import CLOSED, OPEN, PAUSED, Circuit
from fhir_iastm.sync.lifecycle import lease_heartbeat, stop_on_signals
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.ports import LastPushedView, OutboxEntry, OutboxPort

if TYPE_CHECKING:
    from fhir_iastm.records.model import SessionRecord

log = logging.getLogger("fhir_iastm.sync.worker")

PushFn = Callable[["SessionRecord", LastPushedView | None], PushOutcome]
Loader = Callable[[dict[str, Any]], "SessionRecord"]


@dataclass
class WorkerStats:
    """Counts of what one ``run_worker`` call did."""

    claimed: int = 0
    done: dict[str, int] = field(default_factory=dict)
    retried: int = 0
    dead_lettered: int = 0
    lease_lost: int = 0
    #: pushes that failed because the target was down (unreachable, timeout, 429/5xx)
    target_failures: int = 0
    #: the circuit's state when the run ended: closed, open, half-open or paused (401/403)
    circuit: str = CLOSED

    def count(self, status: str) -> None:
        """Count one finished entry by outcome status."""
        self.done[status] = self.done.get(status, 0) + 1


def default_worker_id() -> str:
    """host:pid:random — unique per worker, readable in ``outbox.claimed_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def session_ref(session_id: str) -> str:
    """A stable, non-reversible handle for a session in logs (no identifiers in log lines)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


def _log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One log line: ``event`` is the message, the fields are members of the JSON line."""
    if log.isEnabledFor(level):
        log.log(level, event, extra={"fields": {"event": event, **fields}})


def _default_loader() -> Loader:
    from fhir_iastm.records import load_record

    return load_record


def check_canonical_base(store: OutboxPort, base: str, *, allow_change: bool = False) -> None:
    """Refuse to push under ``base`` when the store's sessions were pushed under another one.

    Every identifier system of a Patient, Organization and session is under the canonical base:
    pushing under a new base would create a second copy of each on the server instead of
    updating it. The store records the base (docs/canonical-base.md); ``allow_change`` is the
    deliberate migration.
    """
    recorded = store.bind_canonical_base(base, allow_change=allow_change)
    if recorded is not None:
        raise ConfigError(
            f"IASTM_CANONICAL_BASE is {base!r}, but this store's sessions were pushed under "
            f"{recorded!r}: pushing under another base would create a second Patient, "
            "Organization and session resources on the FHIR server for every one already there. "
            f"Set IASTM_CANONICAL_BASE back to {recorded!r}, or migrate deliberately with "
            "`fhir-iastm worker --allow-canonical-base-change` (env "
            "IASTM_ALLOW_CANONICAL_BASE_CHANGE=1); see docs/canonical-base.md"
        )


@dataclass
class Worker:
    """One worker's settings; ``run`` loops, ``process`` handles one claimed entry.

    ``canonical_base`` is the base the push function maps with: checked against the store's once
    at start (``check_canonical_base``), and the base of the OperationOutcomes the worker writes;
    None skips the check and renders under the default base (tests with fake pushes).
    """

    store: OutboxPort[Any]
    push: PushFn
    worker_id: str = field(default_factory=default_worker_id)
    poll_interval: float = 1.0
    max_attempts: int = 8
    backoff: Backoff = field(default_factory=Backoff)
    lease_seconds: float = 60.0
    load: Loader | None = None
    heartbeat: bool = True
    stop: threading.Event = field(default_factory=threading.Event)
    stats: WorkerStats = field(default_factory=WorkerStats)
    canonical_base: str | None = None
    allow_canonical_base_change: bool = False
    circuit: Circuit = field(default_factory=Circuit)
    clock: Callable[[], float] = time.monotonic

    def run(self, *, once: bool = False) -> WorkerStats:
        """Drain the outbox; with ``once`` return when nothing is due, else poll until stopped."""
        if self.canonical_base is not None:
            check_canonical_base(
                self.store, self.canonical_base, allow_change=self.allow_canonical_base_change
            )
        if self.load is None:  # import before the first claim: a lease must not pay for it
            self.load = _default_loader()
        _log("worker_start", worker=self.worker_id)
        while not self.stop.is_set():
            if not self.circuit.allows(self.clock()):
                if once:  # the target is down or refuses us: report instead of waiting
                    break
                self.stop.wait(min(self.poll_interval * 5, self.circuit.wait(self.clock())))
                continue
            try:
                busy = self.step()
            except Exception as exc:
                # The store failed (database down, disk full): a drain reports it; a long-running
                # worker keeps polling. An entry it held is retried when its lease expires.
                if once:
                    raise
                _log("store_failed", logging.ERROR, worker=self.worker_id, error=type(exc).__name__)
                self.stop.wait(self.poll_interval)
                continue
            if not busy:
                if once:
                    break
                self.stop.wait(self.poll_interval)
        self.stats.circuit = self.circuit.state
        _log(
            "worker_stop",
            worker=self.worker_id,
            claimed=self.stats.claimed,
            done=self.stats.done,
            retried=self.stats.retried,
            dead_lettered=self.stats.dead_lettered,
            lease_lost=self.stats.lease_lost,
            target_failures=self.stats.target_failures,
            circuit=self.stats.circuit,
        )
        return self.stats

    def step(self) -> bool:
        """Claim and process one entry; False when nothing was due."""
        item = self.store.claim(self.worker_id, self.lease_seconds)
        if item is None:
            return False
        self.stats.claimed += 1
        self.process(item)
        return True

    def process(self, item: OutboxEntry) -> None:
        """Push one claimed entry and record the outcome; never raises for a push failure."""
        ctx = {
            "worker": self.worker_id,
            "outbox_id": item.id,
            "session": session_ref(item.session_id),
            "record_version": item.record_version,
            "attempt": item.attempts,
        }
        try:
            self._process(item, ctx)
        except LeaseLostError:
            self.stats.lease_lost += 1
            _log("lease_lost", logging.WARNING, **ctx)

    def _process(self, item: OutboxEntry, ctx: dict[str, Any]) -> None:
        load = self.load or _default_loader()
        try:
            record = load(item.body)
        except IastmError as exc:  # a stored body that no longer loads: never pushable
            self._dead(item, _failure(item, exc, self.canonical_base), ctx)
            return
        try:
            with lease_heartbeat(self.store, item, self.lease_seconds, enabled=self.heartbeat):
                outcome = self.push(record, item.last_pushed)
        except FhirAuthError as exc:
            self._paused(item, _failure(item, exc, self.canonical_base), ctx)
            return
        except FhirUnavailableError as exc:
            failure = _failure(item, exc, self.canonical_base)
            self._target_down(item, failure, exc.retry_after, ctx)
            return
        except FhirServerError as exc:  # the target answered: this entry's problem (409, 4xx)
            self._target_up(ctx)
            failure = _failure(item, exc, self.canonical_base)
            self._retry_or_dead(item, failure, getattr(exc, "retry_after", None), ctx)
            return
        except IastmError as exc:  # mapping / profile errors: retrying cannot help
            self._dead(item, _failure(item, exc, self.canonical_base), ctx)
            return
        except Exception as exc:
            # A bug or an unforeseen failure: bounded retries, then the dead letter.
            _log("push_crashed", logging.ERROR, error=type(exc).__name__, **ctx)
            crash = Issue(
                "error", "exception", diagnostics=type(exc).__name__, details="E_INTERNAL"
            )
            failure = PushOutcome(
                "rejected",
                item.session_id,
                item.record_version,
                operation_outcome=operation_outcome([crash], base=self.canonical_base),
                error_code="E_INTERNAL",
            )
            self._retry_or_dead(item, failure, None, ctx)
            return
        self._target_up(ctx)
        if outcome.ok:
            self.store.complete(item, outcome)
            self.stats.count(outcome.status)
            _log("push_done", status=outcome.status, **ctx)
        else:
            self._dead(item, outcome, ctx)

    def _target_up(self, ctx: dict[str, Any]) -> None:
        if self.circuit.state != CLOSED:
            _log("circuit_closed", worker=self.worker_id, was=self.circuit.state)
        self.circuit.success()

    def _target_down(self, item: OutboxEntry, failure: PushOutcome, retry_after: float | None,
                     ctx: dict[str, Any]) -> None:
        """A target failure: counted on the entry only while the circuit was closed."""
        self.stats.target_failures += 1
        counted = self.circuit.counting
        now = self.clock()
        state = self.circuit.failure(now)
        if state == OPEN:
            wait = max(self.circuit.wait(now), retry_after or 0.0)
            self.circuit.next_probe_at = now + wait
            _log("circuit_open", logging.WARNING, worker=self.worker_id,
                 failures=self.circuit.failures, probe_in_s=round(wait, 3),
                 error_code=failure.error_code)
        if counted:
            self._retry_or_dead(item, failure, retry_after, ctx)
        else:
            self.store.retry_later(item, self.circuit.wait(now), failure, count_attempt=False)
            self.stats.retried += 1

    def _paused(self, item: OutboxEntry, failure: PushOutcome, ctx: dict[str, Any]) -> None:
        """401/403: the entry keeps its attempt and waits; the worker stops claiming."""
        now = self.clock()
        if self.circuit.state != PAUSED:
            _log("target_paused", logging.ERROR, worker=self.worker_id,
                 error_code=failure.error_code, probe_in_s=self.circuit.probe.cap,
                 action="the FHIR server refused the credentials (401/403, or the SMART "
                        "token request): check IASTM_FHIR_TOKEN or the IASTM_FHIR_SMART_* "
                        "settings (docs/targets.md#authentication), then restart the worker")
        self.circuit.pause(now)
        self.store.retry_later(item, self.circuit.wait(now), failure, count_attempt=False)
        self.stats.retried += 1

    def _retry_or_dead(
        self,
        item: OutboxEntry,
        failure: PushOutcome,
        retry_after: float | None,
        ctx: dict[str, Any],
    ) -> None:
        if item.attempts >= self.max_attempts:
            self._dead(item, failure, ctx)
            return
        delay = max(self.backoff.delay(item.attempts), retry_after or 0.0)
        self.store.retry_later(item, delay, failure)
        self.stats.retried += 1
        _log(
            "push_retry",
            logging.WARNING,
            error_code=failure.error_code,
            delay_s=round(delay, 3),
            **ctx,
        )

    def _dead(self, item: OutboxEntry, failure: PushOutcome, ctx: dict[str, Any]) -> None:
        self.store.dead_letter(item, failure)
        self.stats.dead_lettered += 1
        _log("push_dead_letter", logging.ERROR, error_code=failure.error_code, **ctx)


def _failure(item: OutboxEntry, exc: IastmError, base: str | None) -> PushOutcome:
    """A rejected outcome carrying the error's code and OperationOutcome (not its message): the
    FHIR server's own, else ours with its project URLs under the canonical ``base``."""
    outcome = getattr(exc, "outcome", None) or operation_outcome(exc.issues, base=base)
    return PushOutcome(
        "rejected",
        item.session_id,
        item.record_version,
        operation_outcome=outcome,
        error_code=exc.code,
    )


def run_worker(
    store: OutboxPort[Any],
    push: PushFn,
    *,
    worker_id: str | None = None,
    once: bool = False,
    poll_interval: float = 1.0,
    max_attempts: int = 8,
    backoff: Backoff | None = None,
    lease_seconds: float = 60.0,
    load: Loader | None = None,
    stop: threading.Event | None = None,
    heartbeat: bool = True,
    canonical_base: str | None = None,
    allow_canonical_base_change: bool = False,
    circuit: Circuit | None = None,
) -> WorkerStats:
    """Run one outbox worker until stopped (or, with ``once``, until nothing is due).

    ``canonical_base``: the base ``push`` maps with, checked against the store's first
    (:func:`check_canonical_base`; ConfigError when it changed and the change is not allowed).
    """
    worker = Worker(
        store,
        push,
        worker_id=worker_id or default_worker_id(),
        poll_interval=poll_interval,
        max_attempts=max_attempts,
        backoff=backoff or Backoff(),
        lease_seconds=lease_seconds,
        load=load,
        heartbeat=heartbeat,
        stop=stop or threading.Event(),
        canonical_base=canonical_base,
        allow_canonical_base_change=allow_canonical_base_change,
        circuit=circuit or Circuit(),
    )
    with stop_on_signals(worker.stop, lambda name: _log("worker_signal", signal=name)):
        return worker.run(once=once)


__all__ = [
    "Loader",
    "PushFn",
    "Worker",
    "WorkerStats",
    "check_canonical_base",
    "default_worker_id",
    "run_worker",
    "session_ref",
]
