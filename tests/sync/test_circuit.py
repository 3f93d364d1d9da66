"""The worker waits out a dead server: the circuit breaker (``sync.circuit``) and the worker with
it — no entry claimed while the circuit is open, probes at growing delays, attempts kept through
an outage, 401/403 pause instead of dead-lettering, ``once`` returns at once."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from fhir_iastm.backoff import Backoff
from fhir_iastm.errors import FhirAuthError, FhirServerError, FhirUnavailableError
from fhir_iastm.sync.circuit import CLOSED, HALF_OPEN, OPEN, PAUSED, Circuit
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.worker import Worker

PROBE = Backoff(base=5, factor=2, cap=40, jitter=0)


def test_the_circuit_opens_after_the_threshold_and_probes_at_growing_capped_delays() -> None:
    circuit = Circuit(threshold=3, probe=PROBE, state=CLOSED)
    assert circuit.failure(0) == CLOSED
    circuit.success()  # a success in between resets the count
    assert [circuit.failure(0) for _ in range(3)] == [CLOSED, CLOSED, OPEN]
    assert not circuit.allows(4.9)
    assert circuit.wait(1) == 4
    delays = []
    now = 5.0
    for _ in range(5):
        assert circuit.allows(now)
        assert circuit.state == HALF_OPEN
        assert not circuit.counting  # a failed probe does not count against its entry
        assert circuit.failure(now) == OPEN
        delays.append(circuit.next_probe_at - now)
        now = circuit.next_probe_at
    assert delays == [10, 20, 40, 40, 40]
    assert circuit.allows(now)
    assert circuit.success() == CLOSED
    assert circuit.counting


def test_a_new_circuit_probes_first_so_one_failure_opens_it() -> None:
    circuit = Circuit(threshold=3, probe=PROBE)
    assert circuit.allows(0)
    assert not circuit.counting
    assert circuit.failure(0) == OPEN


def test_a_pause_waits_the_longest_probe_delay() -> None:
    circuit = Circuit(probe=PROBE)
    assert circuit.pause(100) == PAUSED
    assert not circuit.allows(139)
    assert circuit.allows(140)


class Target:
    """A push target that is down, refusing our token, or up; counts every push it gets."""

    def __init__(self) -> None:
        self.mode = "up"
        self.calls: list[str] = []
        self.pushed: list[str] = []

    def __call__(self, record: Any, last: Any) -> PushOutcome:
        self.calls.append(record.session_id)
        if self.mode == "down":
            raise FhirUnavailableError("connection refused")
        if self.mode == "auth":
            raise FhirAuthError("401", status=401)
        if self.mode == "reject":
            raise FhirServerError("400", status=400)
        self.pushed.append(record.session_id)
        return PushOutcome("pushed", record.session_id, record.record_version,
                           identifiers=(f"sys|{record.session_id}",))


@pytest.fixture
def queued(sqlite_store: Any, make_record: Any) -> list[str]:
    ids = [f"S-{i:03d}" for i in range(40)]
    for sid in ids:
        sqlite_store.save_record(*make_record(sid, 1), actor="a")
    return ids


def worker(store: Any, target: Target, clock: Any, **kw: Any) -> Worker:
    """A worker whose circuit runs on the store's fake clock."""
    return Worker(store, target, worker_id="w", max_attempts=3, heartbeat=False,
                  backoff=Backoff(base=1, cap=1, jitter=0), clock=lambda: clock.now.timestamp(),
                  circuit=Circuit(threshold=3, probe=PROBE), **kw)


def test_an_outage_costs_no_entry_its_budget_and_every_entry_goes_out_once(
        sqlite_store: Any, queued: list[str], clock: Any) -> None:
    target = Target()
    target.mode = "down"
    w = worker(sqlite_store, target, clock)
    stats = w.run(once=True)  # returns at once: the first push is a probe, and it failed
    assert len(target.calls) == 1
    assert stats.circuit == OPEN
    for _ in range(30):  # a long outage: one probe per due time, never counted
        clock.advance(3600)
        w.run(once=True)
    assert len(target.calls) == 1 + 30
    assert w.stats.dead_lettered == 0
    assert {sqlite_store.get_sync(sid).attempts for sid in queued} == {0}
    target.mode = "up"
    clock.advance(3600)
    stats = w.run(once=True)
    assert stats.circuit == CLOSED
    assert sorted(target.pushed) == queued  # every entry exactly once
    assert stats.dead_lettered == 0
    assert {sqlite_store.get_sync(sid).state for sid in queued} == {"pushed"}


def test_401_pauses_the_target_without_dead_letters(
        sqlite_store: Any, queued: list[str], clock: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    target = Target()
    target.mode = "auth"
    w = worker(sqlite_store, target, clock)
    with caplog.at_level(logging.INFO, logger="fhir_iastm.sync.worker"):
        stats = w.run(once=True)
    assert len(target.calls) == 1
    assert (stats.circuit, stats.dead_lettered) == (PAUSED, 0)
    sync = sqlite_store.get_sync(target.calls[0])
    assert (sync.state, sync.attempts, sync.last_error_code) == ("queued", 0, "E_FHIR_AUTH")
    [paused] = [r for r in caplog.records if getattr(r, "fields", {}).get("event") ==
                "target_paused"]
    assert "IASTM_FHIR_TOKEN" in paused.fields["action"]
    clock.advance(39)
    w.run(once=True)
    assert len(target.calls) == 1  # no claim before the pause's probe is due
    target.mode = "up"
    clock.advance(3600)
    assert w.run(once=True).circuit == CLOSED
    assert sorted(target.pushed) == queued


def test_target_failures_after_a_success_count_until_the_circuit_opens(
        sqlite_store: Any, queued: list[str], clock: Any) -> None:
    target = Target()
    w = worker(sqlite_store, target, clock)
    w.circuit.success()  # the target was seen up
    target.mode = "down"
    assert w.run(once=True).circuit == OPEN
    assert len(target.calls) == 3  # the threshold
    attempts = sorted(sqlite_store.get_sync(sid).attempts for sid in queued)
    assert attempts == [0] * (len(queued) - 3) + [1, 1, 1]


def test_answers_from_a_live_server_keep_the_circuit_closed_and_count(
        sqlite_store: Any, queued: list[str], clock: Any) -> None:
    target = Target()
    target.mode = "reject"  # the server is up; the entries are the problem
    w = worker(sqlite_store, target, clock)
    for _ in range(3):
        assert w.run(once=True).circuit == CLOSED
        clock.advance(3600)
    assert len(target.calls) == 3 * len(queued)
    assert w.stats.dead_lettered == len(queued)  # max_attempts=3, as before
