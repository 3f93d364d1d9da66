"""Outbox worker with fake push functions: outcomes, retries with backoff, dead letters, leases,
SIGTERM, PHI-free JSON logs, and two threads draining one store."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import timedelta

import pytest

from fhir_iastm.backoff import Backoff
from fhir_iastm.errors import FhirUnavailableError, MappingError
from fhir_iastm.sync.circuit import CLOSED, Circuit
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.worker import run_worker, session_ref

OO = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "processing", "diagnostics": "rejected"}],
}
NO_JITTER = Backoff(base=10, factor=2, cap=1000, jitter=0)


def counting() -> Circuit:
    """A circuit that counts every failure against its entry (the per-entry backoff and dead
    letter in isolation; the circuit itself: test_circuit.py)."""
    return Circuit(threshold=1_000_000, state=CLOSED)


class FakePush:
    """Records every call; answers from a per-session script (default: pushed)."""

    def __init__(self, script=None) -> None:
        self.calls: list[tuple[str, int, object]] = []
        self.script = script or {}
        self.lock = threading.Lock()

    def __call__(self, record, last):
        with self.lock:
            self.calls.append((record.session_id, record.record_version, last))
        answer = self.script.get(record.session_id, "pushed")
        if callable(answer):
            answer = answer(record, last)
        if isinstance(answer, BaseException):
            raise answer
        if answer == "rejected":
            return PushOutcome(
                "rejected",
                record.session_id,
                record.record_version,
                operation_outcome=OO,
                error_code="E_PUSH_REJECTED",
            )
        return PushOutcome(
            answer,
            record.session_id,
            record.record_version,
            identifiers=(f"sys|{record.session_id}/v{record.record_version}",),
        )


def test_each_outcome_lands_in_its_state(sqlite_store, make_record) -> None:
    script = {"S-1": "pushed", "S-2": "unchanged", "S-3": "superseded", "S-4": "rejected"}
    for sid in script:
        sqlite_store.save_record(*make_record(sid, 1), actor="a")
    stats = run_worker(sqlite_store, FakePush(script), worker_id="w", once=True)
    assert stats.done == {"pushed": 1, "unchanged": 1, "superseded": 1}
    assert stats.dead_lettered == 1
    states = {sid: sqlite_store.get_sync(sid) for sid in script}
    assert {sid: s.state for sid, s in states.items()} == {
        "S-1": "pushed",
        "S-2": "unchanged",
        "S-3": "superseded",
        "S-4": "dead-letter",
    }
    assert states["S-4"].last_outcome == OO
    assert states["S-4"].last_error_code == "E_PUSH_REJECTED"
    assert sqlite_store.outbox_counts()["pending"] == 0


def test_push_gets_the_last_pushed_version_for_the_retraction_diff(store, make_record) -> None:
    store.save_record(*make_record("S-1", 1), actor="a")
    store.save_record(*make_record("S-1", 2, notes="v2"), actor="a")
    push = FakePush()
    run_worker(store, push, worker_id="w", once=True)
    assert [(sid, v) for sid, v, _ in push.calls] == [("S-1", 1), ("S-1", 2)]
    assert push.calls[0][2] is None
    assert push.calls[1][2].record_version == 1
    assert push.calls[1][2].identifiers == ("sys|S-1/v1",)
    assert store.last_pushed("S-1").identifiers == ("sys|S-1/v2",)


def test_transient_failures_back_off_exponentially_then_succeed(
    sqlite_store, make_record, clock
) -> None:
    sqlite_store.save_record(*make_record("S-1", 1), actor="a")
    failures = iter([FhirUnavailableError("down"), FhirUnavailableError("down"), "pushed"])
    push = FakePush({"S-1": lambda r, last: next(failures)})
    delays = []
    for _ in range(3):
        start = clock.now
        stats = run_worker(sqlite_store, push, worker_id="w", once=True, backoff=NO_JITTER,
                           circuit=counting())
        sync = sqlite_store.get_sync("S-1")
        if sync.next_retry_at is not None:
            delays.append((sync.next_retry_at - start).total_seconds())
            clock.advance(delays[-1] - 1)
            assert run_worker(sqlite_store, push, worker_id="w", once=True).claimed == 0
            clock.advance(1)
    assert delays == [10, 20]
    assert stats.done == {"pushed": 1}
    assert sqlite_store.get_sync("S-1").state == "pushed"
    assert len(push.calls) == 3


def test_retry_after_from_the_error_is_honoured(sqlite_store, make_record, clock) -> None:
    sqlite_store.save_record(*make_record("S-1", 1), actor="a")
    busy = FhirUnavailableError("429")
    busy.retry_after = 120.0  # type: ignore[attr-defined]
    run_worker(sqlite_store, FakePush({"S-1": busy}), worker_id="w", once=True, backoff=NO_JITTER,
               circuit=counting())
    assert sqlite_store.get_sync("S-1").next_retry_at == clock.now + timedelta(seconds=120)


def test_bounded_retries_end_in_the_dead_letter(sqlite_store, make_record, clock) -> None:
    sqlite_store.save_record(*make_record("S-1", 1), actor="a")
    push = FakePush({"S-1": FhirUnavailableError("down")})
    for _ in range(3):
        run_worker(sqlite_store, push, worker_id="w", once=True, max_attempts=3, backoff=NO_JITTER,
                   circuit=counting())
        clock.advance(10_000)
    sync = sqlite_store.get_sync("S-1")
    assert (sync.state, sync.attempts, sync.last_error_code) == (
        "dead-letter",
        3,
        "E_FHIR_UNAVAILABLE",
    )
    assert len(push.calls) == 3


@pytest.mark.parametrize(
    ("error", "code", "calls"),
    [
        # cannot get better: dead letter at once
        (MappingError("no code for x"), "E_UNMAPPABLE", 1),
        (ZeroDivisionError("bug"), "E_INTERNAL", 2),  # unexpected: retried (bounded), then dead
    ],
)
def test_non_transient_and_unexpected_errors(
    sqlite_store, make_record, clock, error, code, calls
) -> None:
    sqlite_store.save_record(*make_record("S-1", 1), actor="a")
    push = FakePush({"S-1": error})
    for _ in range(2):
        run_worker(sqlite_store, push, worker_id="w", once=True, max_attempts=2, backoff=NO_JITTER)
        clock.advance(10_000)
    sync = sqlite_store.get_sync("S-1")
    assert (sync.state, sync.last_error_code, len(push.calls)) == ("dead-letter", code, calls)


def test_a_stored_body_that_no_longer_loads_is_dead_lettered(sqlite_store, make_record) -> None:
    sqlite_store.save_record(*make_record("S-1", 1), actor="a")
    with sqlite_store.write() as conn:
        from fhir_iastm.storage.schema import record_versions

        conn.execute(record_versions.update().values(body={"session_id": "S-1"}))
    push = FakePush()
    run_worker(sqlite_store, push, worker_id="w", once=True)
    sync = sqlite_store.get_sync("S-1")
    assert (sync.state, sync.last_error_code, push.calls) == ("dead-letter", "E_INVALID_RECORD", [])
    assert sync.last_outcome["resourceType"] == "OperationOutcome"


def test_a_lost_lease_drops_the_result_without_crashing(sqlite_store, make_record, clock) -> None:
    sqlite_store.save_record(*make_record("S-1", 1), actor="a")
    stolen = []

    def slow(record, last):
        clock.advance(200)  # longer than the lease ...
        stolen.append(
            sqlite_store.claim("other", lease_seconds=60)
        )  # ... so another worker took it
        return "pushed"

    stats = run_worker(
        sqlite_store, FakePush({"S-1": slow}), worker_id="w", once=True, lease_seconds=100
    )
    assert stats.lease_lost == 1
    assert stats.done == {}
    assert stolen[0].claimed_by == "other"
    assert sqlite_store.get_sync("S-1").state == "pushing"  # the other worker's push is in flight


def test_logs_are_json_lines_without_phi(sqlite_store, make_record, caplog) -> None:
    record, raw = make_record("RBPT-2025-000311", 1)
    sqlite_store.save_record(record, raw, actor="a")
    push = FakePush({record.session_id: FhirUnavailableError(f"MRN {record.patient.mrn} down")})
    with caplog.at_level(logging.DEBUG, logger="fhir_iastm.sync.worker"):
        run_worker(sqlite_store, push, worker_id="w", once=True, circuit=counting())
    lines = [r.fields for r in caplog.records if r.name == "fhir_iastm.sync.worker"]
    assert [line["event"] for line in lines] == ["worker_start", "push_retry", "worker_stop"]
    assert lines[1]["session"] == session_ref(record.session_id)
    assert lines[1]["error_code"] == "E_FHIR_UNAVAILABLE"
    text = caplog.text
    for phi in (
        record.patient.mrn,
        record.patient.family_name,
        record.patient.birth_date,
        record.session_id,
    ):
        assert phi not in text


def test_sigterm_finishes_the_push_in_hand_then_stops(sqlite_store, make_record) -> None:
    for i in range(3):
        sqlite_store.save_record(*make_record(f"S-{i}", 1), actor="a")
    before = signal.getsignal(signal.SIGTERM)

    def first_then_term(record, last):
        os.kill(os.getpid(), signal.SIGTERM)
        return "pushed"

    push = FakePush({"S-0": first_then_term})
    stats = run_worker(sqlite_store, push, worker_id="w", poll_interval=0.01)  # not once: loops
    assert stats.done == {"pushed": 1}
    assert sqlite_store.get_sync("S-0").state == "pushed"
    assert sqlite_store.outbox_counts()["pending"] == 2
    assert signal.getsignal(signal.SIGTERM) == before


def test_stop_event_ends_a_polling_worker(sqlite_store) -> None:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(sqlite_store, FakePush()),
        kwargs={"stop": stop, "poll_interval": 0.01},
    )
    thread.start()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_two_threads_on_sqlite_push_every_entry_exactly_once(sqlite_store, make_record) -> None:
    expected = []
    for i in range(40):
        for version in (1, 2):
            sqlite_store.save_record(
                *make_record(f"S-{i:03d}", version, notes=f"v{version}"), actor="a"
            )
            expected.append((f"S-{i:03d}", version))
    push = FakePush()
    threads = [
        threading.Thread(
            target=run_worker,
            args=(sqlite_store, push),
            kwargs={"worker_id": f"w{n}", "once": True},
        )
        for n in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    pushed = [(sid, v) for sid, v, _ in push.calls]
    assert sorted(pushed) == sorted(expected)
    for i in range(40):  # per session, in version order
        assert [v for sid, v in pushed if sid == f"S-{i:03d}"] == [1, 2]


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(base=2, factor=3, cap=50, jitter=0.5)
    assert backoff.delay(1, rng=lambda: 0.5) == 2
    assert backoff.delay(3, rng=lambda: 0.5) == 18
    assert backoff.delay(9, rng=lambda: 0.5) == 50
    assert backoff.delay(1, rng=lambda: 0.0) == 1
    assert backoff.delay(1, rng=lambda: 1.0) == 3


@pytest.mark.parametrize(("heartbeat", "stolen"), [(True, False), (False, True)])
def test_the_heartbeat_keeps_a_slow_push_claimed(tmp_path, make_record, heartbeat, stolen) -> None:
    """Real clock: the push lasts ~3 leases; with the heartbeat nobody else can claim it."""

    from fhir_iastm.storage import Store

    url = f"sqlite:///{tmp_path / 'hb.db'}"
    store, rival = Store(url), Store(url)
    store.migrate()
    store.save_record(*make_record("S-1", 1), actor="a")
    rival_claims = []

    def slow(record, last):
        for _ in range(3):
            time.sleep(0.6)
            rival_claims.append(rival.claim("rival", lease_seconds=30))
        return "pushed"

    stats = run_worker(
        store,
        FakePush({"S-1": slow}),
        worker_id="w",
        once=True,
        lease_seconds=1.0,
        heartbeat=heartbeat,
    )
    taken = [c for c in rival_claims if c is not None]
    assert bool(taken) is stolen
    assert stats.lease_lost == (1 if stolen else 0)
    assert store.get_sync("S-1").state == ("pushing" if stolen else "pushed")


def test_a_store_failure_stops_a_drain_but_not_a_polling_worker(
    sqlite_store, make_record, monkeypatch
) -> None:
    from sqlalchemy.exc import OperationalError

    sqlite_store.save_record(*make_record("S-1", 1), actor="a")
    real_claim, failures = sqlite_store.claim, iter([True, True])

    def flaky_claim(*args, **kwargs):
        if next(failures, False):
            raise OperationalError("SELECT", {}, Exception("database is down"))
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(sqlite_store, "claim", flaky_claim)
    with pytest.raises(OperationalError):  # a drain (once) reports the failure
        run_worker(sqlite_store, FakePush(), worker_id="w", once=True)
    stop, push = threading.Event(), FakePush()
    thread = threading.Thread(
        target=run_worker,
        args=(sqlite_store, push),
        kwargs={"worker_id": "w", "poll_interval": 0.01, "stop": stop},
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not push.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(10)
    assert [(sid, v) for sid, v, _ in push.calls] == [("S-1", 1)]  # survived the 2nd failure


OLD_BASE, NEW_BASE = "https://old.example.com/fhir", "https://new.example.com/fhir"


def test_a_worker_refuses_another_canonical_base_after_a_push(sqlite_store, make_record) -> None:
    """A changed IASTM_CANONICAL_BASE would create duplicate Patients: refused until allowed."""
    from fhir_iastm.errors import ConfigError

    sqlite_store.save_record(*make_record("S-1", 1), actor="t")
    push = FakePush()
    run_worker(sqlite_store, push, once=True, heartbeat=False, canonical_base=OLD_BASE)
    assert sqlite_store.get_sync("S-1").state == "pushed"

    sqlite_store.save_record(*make_record("S-2", 1), actor="t")
    with pytest.raises(ConfigError) as refused:
        run_worker(sqlite_store, push, once=True, heartbeat=False, canonical_base=NEW_BASE)
    message = refused.value.message
    assert "IASTM_CANONICAL_BASE" in message
    assert OLD_BASE in message
    assert NEW_BASE in message
    assert "--allow-canonical-base-change" in message
    assert [c[0] for c in push.calls] == ["S-1"]  # nothing pushed under the new base
    assert sqlite_store.outbox_counts()["pending"] == 1

    # the old base still works; the deliberate migration is recorded and then sticks
    run_worker(sqlite_store, FakePush(), once=True, heartbeat=False, canonical_base=OLD_BASE)
    sqlite_store.save_record(*make_record("S-3", 1), actor="t")
    run_worker(sqlite_store, push, once=True, heartbeat=False, canonical_base=NEW_BASE,
               allow_canonical_base_change=True)
    assert [c[0] for c in push.calls] == ["S-1", "S-3"]
    assert any(a["action"] == "canonical-base-change" for a in sqlite_store.audit_log())
    with pytest.raises(ConfigError):
        run_worker(sqlite_store, push, once=True, heartbeat=False, canonical_base=OLD_BASE)


def test_a_store_that_never_pushed_adopts_a_new_base_silently(sqlite_store, make_record) -> None:
    sqlite_store.save_record(*make_record("S-1", 1), actor="t")
    rejected = FakePush({"S-1": "rejected"})  # nothing reaches the server
    run_worker(sqlite_store, rejected, once=True, heartbeat=False, canonical_base=OLD_BASE)
    sqlite_store.save_record(*make_record("S-2", 1), actor="t")
    push = FakePush()
    run_worker(sqlite_store, push, once=True, heartbeat=False, canonical_base=NEW_BASE)
    assert [c[0] for c in push.calls] == ["S-2"]
    assert sqlite_store.bind_canonical_base(NEW_BASE) is None
    assert sqlite_store.bind_canonical_base(OLD_BASE) == NEW_BASE


def test_the_worker_command_exits_1_naming_the_setting(sqlite_store, make_record, tmp_path) -> None:
    from click.testing import CliRunner

    from fhir_iastm.cli import main

    sqlite_store.save_record(*make_record("S-1", 1), actor="t")
    run_worker(sqlite_store, FakePush(), once=True, heartbeat=False, canonical_base=OLD_BASE)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    args = ["worker", "--once", "--database-url", url, "--server", "http://127.0.0.1:9/fhir"]
    result = CliRunner().invoke(main, args, env={"IASTM_CANONICAL_BASE": NEW_BASE})
    assert result.exit_code == 1, result.output
    assert "IASTM_CANONICAL_BASE" in result.stderr
    assert OLD_BASE in result.stderr


def test_the_outcomes_the_worker_writes_are_under_its_canonical_base(
    sqlite_store, make_record, clock
) -> None:
    """A dead letter's OperationOutcome names the error-code CodeSystem under the worker's base."""
    sqlite_store.save_record(*make_record("S-1", 1), actor="t")
    sqlite_store.save_record(*make_record("S-2", 1), actor="t")
    push = FakePush({"S-1": MappingError("no code"), "S-2": ZeroDivisionError("bug")})
    run_worker(sqlite_store, push, once=True, heartbeat=False, canonical_base=NEW_BASE,
               max_attempts=1, backoff=NO_JITTER)
    for sid, code in (("S-1", "E_UNMAPPABLE"), ("S-2", "E_INTERNAL")):
        sync = sqlite_store.get_sync(sid)
        assert (sync.state, sync.last_error_code) == ("dead-letter", code)
        (issue,) = sync.last_outcome["issue"]
        assert issue["details"]["coding"] == [
            {"system": f"{NEW_BASE}/CodeSystem/iastm-error-code", "code": code}
        ]
