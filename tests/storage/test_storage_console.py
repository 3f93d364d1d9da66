"""The console's queries (storage/console.py) on SQLite and the real PostgreSQL."""

from __future__ import annotations

import copy
import json
from typing import Any

from sqlalchemy import text

from fhir_iastm.records import load_record
from fhir_iastm.storage import ConsoleStore, SessionFilter, Store
from fhir_iastm.storage.engine import current_revision, migrate
from fhir_iastm.sync.outcome import PushOutcome
from tests.console.seed import course_dicts

OO = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}


def save(store: Store, raw: dict[str, Any]) -> None:
    store.save_record(load_record(raw), raw, actor="t")


def seeded(store: Store) -> ConsoleStore:
    for raw in course_dicts("MRN-A", 5, prefix="A"):
        save(store, raw)
    for raw in course_dicts("MRN-B", 3, prefix="B"):
        raw["clinic"]["clinic_id"] = "OTHER-01"
        raw["therapist"]["npi"] = "1245319599"
        save(store, raw)
    return ConsoleStore(store)


def ids(page: Any) -> list[str]:
    return [row.session_id for row in page.rows]


def test_newest_first_keyset_pages(store: Store) -> None:
    console = seeded(store)
    first = console.sessions(SessionFilter(), limit=3)
    assert ids(first) == ["A-MRN-A-005", "A-MRN-A-004", "B-MRN-B-003"]
    assert first.next_key == (first.rows[-1].session_start, "B-MRN-B-003")
    second = console.sessions(SessionFilter(), after=first.next_key, limit=3)
    assert ids(second) == ["A-MRN-A-003", "B-MRN-B-002", "A-MRN-A-002"]
    last = console.sessions(SessionFilter(), after=second.next_key, limit=3)
    assert ids(last) == ["B-MRN-B-001", "A-MRN-A-001"]
    assert last.next_key is None
    row = first.rows[0]
    assert (row.status, row.record_version, row.sync_state) == ("completed", 1, "queued")
    assert row.body["session"]["session_number"] == 5


def test_filters(store: Store) -> None:
    console = seeded(store)
    assert ids(console.sessions(SessionFilter(clinic="OTHER-01"))) == [
        "B-MRN-B-003", "B-MRN-B-002", "B-MRN-B-001"]
    assert len(console.sessions(SessionFilter(therapist="1245319599")).rows) == 3
    assert len(console.sessions(SessionFilter(patient="MRN-A")).rows) == 5
    dated = console.sessions(SessionFilter(date_from="2025-01-02", date_to="2025-01-03"))
    assert ids(dated) == ["B-MRN-B-003", "A-MRN-A-003", "B-MRN-B-002", "A-MRN-A-002"]
    assert ids(console.sessions(SessionFilter(status="cancelled"))) == []
    assert len(console.sessions(SessionFilter(sync="queued")).rows) == 8
    assert ids(console.sessions(SessionFilter(sync="pushed"))) == []


def test_dead_letters_resolve_and_history(store: Store) -> None:
    console = seeded(store)
    item = store.claim("w")
    assert item is not None
    store.dead_letter(item, PushOutcome("dead-letter", item.session_id, 1,
                                        operation_outcome=OO, error_code="E_PUSH_REJECTED"))
    dead = console.dead_letters()
    assert [(d["session_id"], d["last_error_code"]) for d in dead] == [
        (item.session_id, "E_PUSH_REJECTED")]
    assert dead[0]["last_outcome"] == OO
    assert console.dead_letter_kinds() == {"E_PUSH_REJECTED": 1}
    assert console.dead_letters("E_OTHER") == []
    history = console.push_history(item.session_id)
    assert [(h["record_version"], h["outcome"]) for h in history] == [(1, "dead-letter")]
    overview = console.overview()
    assert overview["outbox"]["dead-letter"] == 1
    assert overview["sync"]["dead-letter"] == 1
    assert overview["oldest_queued"] is not None
    assert console.resolve(item.session_id, "tester")
    assert not console.resolve(item.session_id, "tester")  # not a dead letter any more
    assert store.get_sync(item.session_id).state == "resolved"
    assert console.dead_letters() == []
    assert console.audit_of(item.session_id)[0]["action"] == "resolve"


def test_migration_0008_backfills_the_therapist(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(store.engine, "0007")
    raw = copy.deepcopy(course_dicts("MRN-M", 1)[0])
    with store.write() as conn:
        conn.execute(text(
            "INSERT INTO records (session_id, record_version, record_hash, status, clinic_id,"
            " patient_mrn, session_start, created_at, updated_at) VALUES ('M1', 1, 'h',"
            " 'completed', 'C', 'MRN-M', '2025-01-01', '2025-01-01', '2025-01-01')"))
        conn.execute(text(
            "INSERT INTO record_versions (session_id, record_version, record_hash, body,"
            " received_at) VALUES ('M1', 1, 'h', :body, '2025-01-01')"),
            {"body": json.dumps(raw)})
    migrate(store.engine, "0008")
    assert current_revision(store.engine) == "0008"
    with store.read() as conn:
        npi = conn.execute(text("SELECT therapist_npi FROM records")).scalar()
    assert npi == raw["therapist"]["npi"]
