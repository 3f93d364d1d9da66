"""Outbox: claim with leases, expiry, per-session order, complete / retry / dead letter — on SQLite
and on the real PostgreSQL (the ``store`` fixture runs every test on both)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fhir_iastm.errors import LeaseLostError
from fhir_iastm.sync.outcome import PushOutcome

OO = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "multiple-matches"}],
}


def outcome(status: str, **fields: Any) -> PushOutcome:
    """A push result; the store reads only its status, identifiers, ids, outcome and code."""
    return PushOutcome(status, "S-any", 1, **fields)


def test_nothing_to_claim(store) -> None:
    assert store.claim("w1") is None


def test_claim_carries_the_version_to_push(store, make_record, clock) -> None:
    store.save_record(*make_record("S-1", 1, notes="first"), actor="a")
    item = store.claim("w1", lease_seconds=30)
    assert (item.session_id, item.record_version, item.attempts, item.claimed_by) == (
        "S-1",
        1,
        1,
        "w1",
    )
    assert item.body["notes"] == "first"
    assert item.claimed_until == clock.now + timedelta(seconds=30)
    assert store.get_sync("S-1").state == "pushing"
    assert store.outbox_counts() == {"pending": 1, "in_flight": 1, "done": 0, "dead-letter": 0}


def test_a_session_in_flight_is_not_claimed_again_until_its_lease_expires(
    store, make_record, clock
) -> None:
    store.save_record(*make_record("S-1", 1), actor="a")
    store.save_record(*make_record("S-1", 2, notes="v2"), actor="a")
    first = store.claim("w1", lease_seconds=60)
    assert first.record_version == 1
    assert store.claim("w2") is None  # v2 waits: its session is in flight (docs/decisions.md#d9)
    clock.advance(59)
    assert store.claim("w2") is None
    clock.advance(2)  # w1 crashed: the lease expired, the SAME entry (v1) is re-claimed first
    again = store.claim("w2", lease_seconds=60)
    assert (again.id, again.record_version, again.attempts) == (first.id, 1, 2)
    with pytest.raises(LeaseLostError):  # w1 wakes up late: its result is refused
        store.complete(first, outcome("pushed"))
    store.complete(again, outcome("pushed", identifiers=("sys|S-1/a",)))
    nxt = store.claim("w1")
    assert nxt.record_version == 2


def test_expired_but_unclaimed_lease_can_still_complete(store, make_record, clock) -> None:
    store.save_record(*make_record("S-1", 1), actor="a")
    item = store.claim("w1", lease_seconds=5)
    clock.advance(10)
    store.complete(item, outcome("pushed"))
    assert store.get_sync("S-1").state == "pushed"
    assert store.claim("w2") is None


def test_versions_of_a_session_go_out_in_order_other_sessions_interleave(
    store, make_record
) -> None:
    for sid, version in (("A", 1), ("B", 1), ("A", 2), ("A", 3), ("B", 2)):
        store.save_record(*make_record(sid, version, notes=f"{sid}{version}"), actor="a")
    in_flight = [store.claim("w1"), store.claim("w2")]
    assert sorted((i.session_id, i.record_version) for i in in_flight) == [("A", 1), ("B", 1)]
    assert store.claim("w3") is None  # both sessions busy
    order = []
    while in_flight:
        item = in_flight.pop(0)
        order.append((item.session_id, item.record_version))
        store.complete(item, outcome("pushed"))
        nxt = store.claim("w1")
        if nxt is not None:
            in_flight.append(nxt)
    assert [v for s, v in order if s == "A"] == [1, 2, 3]
    assert [v for s, v in order if s == "B"] == [1, 2]
    assert store.outbox_counts()["pending"] == 0


def test_complete_records_what_the_server_holds(store, make_record) -> None:
    record, raw = make_record("S-1", 1)
    store.save_record(record, raw, actor="a")
    store.complete(
        store.claim("w"),
        outcome(
            "pushed", identifiers=("sys|S-1/cond/1",), fhir_ids={"sys|S-1/cond/1": "Condition/7"}
        ),
    )
    last = store.last_pushed("S-1")
    assert (last.record_version, last.identifiers, dict(last.fhir_ids)) == (
        1,
        ("sys|S-1/cond/1",),
        {"sys|S-1/cond/1": "Condition/7"},
    )
    assert last.record_hash == store.get_record("S-1").record_hash
    sync = store.get_sync("S-1")
    assert (sync.state, sync.pushed_version, sync.pending, sync.attempts) == ("pushed", 1, 0, 0)


def test_superseded_does_not_move_the_pushed_version(store, make_record) -> None:
    store.save_record(*make_record("S-1", 1), actor="a")
    store.complete(store.claim("w"), outcome("pushed", identifiers=("x|1",)))
    store.save_record(*make_record("S-1", 2, notes="n"), actor="a")
    store.complete(store.claim("w"), outcome("superseded"))
    assert store.get_sync("S-1").state == "superseded"
    assert store.last_pushed("S-1").record_version == 1


def test_state_stays_queued_while_newer_versions_wait(store, make_record) -> None:
    store.save_record(*make_record("S-1", 1), actor="a")
    store.save_record(*make_record("S-1", 2, notes="n"), actor="a")
    store.complete(store.claim("w"), outcome("pushed"))
    sync = store.get_sync("S-1")
    assert (sync.state, sync.pending, sync.pushed_version) == ("queued", 1, 1)


def test_retry_later_releases_the_lease_until_the_delay_passes(store, make_record, clock) -> None:
    store.save_record(*make_record("S-1", 1), actor="a")
    item = store.claim("w1")
    store.retry_later(item, 30, outcome("rejected", error_code="E_FHIR_UNAVAILABLE"))
    sync = store.get_sync("S-1")
    assert (sync.state, sync.attempts, sync.last_error_code) == ("queued", 1, "E_FHIR_UNAVAILABLE")
    assert sync.next_retry_at == clock.now + timedelta(seconds=30)
    assert store.claim("w2") is None
    clock.advance(31)
    again = store.claim("w2")
    assert (again.id, again.attempts) == (item.id, 2)
    with pytest.raises(LeaseLostError):  # the old claim token is void
        store.retry_later(item, 1, outcome("rejected"))


def test_dead_letter_keeps_the_outcome_and_lets_later_versions_through(store, make_record) -> None:
    store.save_record(*make_record("S-1", 1), actor="a")
    store.dead_letter(
        store.claim("w"),
        outcome("rejected", operation_outcome=OO, error_code="E_AMBIGUOUS_MATCH"),
    )
    sync = store.get_sync("S-1")
    assert (sync.state, sync.last_error_code, sync.last_outcome) == (
        "dead-letter",
        "E_AMBIGUOUS_MATCH",
        OO,
    )
    assert store.list_records(sync="dead-letter").items[0].session_id == "S-1"
    assert store.outbox_counts()["dead-letter"] == 1
    store.save_record(*make_record("S-1", 2, notes="fixed"), actor="a")
    assert store.claim("w").record_version == 2


def test_complete_refuses_a_failure(store, make_record) -> None:
    store.save_record(*make_record("S-1", 1), actor="a")
    with pytest.raises(ValueError, match="rejected"):
        store.complete(store.claim("w"), outcome("rejected"))


def test_extend_lease(store, make_record, clock) -> None:
    store.save_record(*make_record("S-1", 1), actor="a")
    item = store.claim("w1", lease_seconds=10)
    clock.advance(8)
    item = store.extend_lease(item, 10)
    clock.advance(8)
    assert store.claim("w2") is None  # still held thanks to the extension
    clock.advance(3)
    assert store.claim("w2") is not None
    with pytest.raises(LeaseLostError):
        store.extend_lease(item, 10)


def test_prune_outbox_deletes_only_old_finished_entries(store, make_record, clock) -> None:
    for sid in ("A", "B", "C"):
        store.save_record(*make_record(sid, 1), actor="a")
    store.complete(store.claim("w"), outcome("pushed"))  # A done at t0
    store.dead_letter(store.claim("w"), outcome("rejected"))  # B dead at t0
    clock.advance(3600)
    cutoff = clock.now
    store.save_record(*make_record("A", 2, notes="n"), actor="a")
    store.complete(store.claim("w"), outcome("pushed"))  # C done after the cutoff
    assert store.prune_outbox(cutoff) == 2
    counts = store.outbox_counts()
    assert (counts["pending"], counts["done"], counts["dead-letter"]) == (1, 1, 0)
    assert store.last_pushed("A").record_version == 1  # sync state is untouched
