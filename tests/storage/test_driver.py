"""``storage.driver`` writes exactly what ``conn.execute`` writes, on SQLite and PostgreSQL: the
same rows for the statements of the save (UTC datetimes, JSON bodies given as dicts or as
``JsonText``, NULLs; on PostgreSQL the INSERTs are COPYs), the UPDATEs by key, and the keys
``new_keys`` gives are those an INSERT … RETURNING gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from fhir_iastm.storage import Store, driver
from fhir_iastm.storage.fhir_types import JsonText, compact_json
from fhir_iastm.storage.saving import (
    _INSERT_AUDIT,
    _INSERT_ENTRY,
    _INSERT_ENTRY_KEYED,
    _INSERT_RECORD,
    _INSERT_SYNC,
    _INSERT_VERSION,
    _UPDATE_RECORD,
    _UPDATE_SYNC,
)
from fhir_iastm.storage.schema import audit, outbox, record_versions, records, sync_state

WHEN = datetime(2026, 3, 4, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
BODY = {"session_id": "x", "notes": "Élan — naïve ✓", "n": [1, 2.5, None, True]}


def _rows(sid: str, body: Any) -> list[tuple[Any, list[dict[str, Any]]]]:
    record = {"session_id": sid, "record_version": 1, "record_hash": "h" * 64,
              "status": "completed", "clinic_id": "C1", "patient_mrn": "M1",
              "therapist_npi": "1234567893", "session_start": WHEN, "updated_at": WHEN,
              "created_at": WHEN, "indexed_version": None}
    return [
        (_INSERT_RECORD, [record]),
        (_INSERT_VERSION, [{"session_id": sid, "record_version": 1, "record_hash": "h" * 64,
                            "body": body, "received_at": WHEN, "actor": None}]),
        (_INSERT_SYNC, [{"session_id": sid, "state": "queued", "attempts": 0,
                         "updated_at": WHEN}]),
        (_INSERT_AUDIT, [{"ts": WHEN, "actor": "cli", "action": "save", "session_id": sid,
                          "outcome": "created"}]),
        (_UPDATE_RECORD, [{"b_sid": sid, "record_version": 2, "record_hash": "g" * 64,
                           "status": "cancelled", "clinic_id": "C2", "patient_mrn": "M2",
                           "therapist_npi": "1234567893", "session_start": WHEN.astimezone(UTC),
                           "updated_at": WHEN + timedelta(seconds=1), "indexed_version": 2}]),
        (_UPDATE_SYNC, [{"b_sid": sid, "state": "queued", "attempts": 0, "next_retry_at": None,
                         "updated_at": WHEN + timedelta(seconds=2)}]),
    ]


def _stored(store: Store, sid: str) -> list[Any]:
    out = []
    with store.read() as conn:
        for table in (records, record_versions, sync_state, audit, outbox):
            for row in conn.execute(select(table).where(table.c.session_id == sid)):
                out.append({k: v for k, v in row._mapping.items()
                            if k not in ("session_id", "id")})
    return out


def test_the_driver_writes_the_rows_sqlalchemy_writes(store: Store) -> None:
    with store.write() as conn:
        for statement, rows in _rows("DRV-A", BODY):
            conn.execute(statement, rows)
        for statement, rows in _rows("DRV-B", BODY):
            driver.run(conn, statement, rows)
        for statement, rows in _rows("DRV-C", JsonText(compact_json(BODY))):
            driver.run(conn, statement, rows)
    expected = _stored(store, "DRV-A")
    assert expected[1]["body"] == BODY
    assert expected[0]["updated_at"] == WHEN + timedelta(seconds=1)
    assert _stored(store, "DRV-B") == expected
    assert _stored(store, "DRV-C") == expected


def test_new_keys_are_the_ids_an_insert_returning_gives(store: Store) -> None:
    """``driver.new_keys`` gives the ids the database would give (PostgreSQL: the column's
    sequence; SQLite: after the greatest), so rows written with them and an INSERT … RETURNING
    after them number as INSERT … RETURNING alone would."""
    entry = {"session_id": "DRV-D", "record_version": 1, "attempts": 0, "created_at": WHEN,
             "next_attempt_at": WHEN}
    with store.write() as conn:
        for statement, rows in _rows("DRV-D", BODY)[:1]:
            driver.run(conn, statement, rows)
        first = conn.execute(_INSERT_ENTRY, [entry]).scalar_one()
        keys = driver.new_keys(conn, outbox.c.id, 3)
        driver.run(conn, _INSERT_ENTRY_KEYED, [{"id": key, **entry} for key in keys])
        last = conn.execute(_INSERT_ENTRY, [entry]).scalar_one()
        ids = conn.execute(select(outbox.c.id).where(outbox.c.session_id == "DRV-D")
                           .order_by(outbox.c.id)).scalars().all()
    assert keys == [first + 1, first + 2, first + 3]
    assert ids == [first, *keys, last]
    assert last == first + 4


def test_audit_events_are_stored_as_sqlalchemy_stores_them(store: Store) -> None:
    """One INSERT per batch of events, one per batch of entities (found by event id): the rows
    an INSERT … RETURNING per event, then its entities, wrote."""
    from sqlalchemy import Text, insert, type_coerce

    from fhir_iastm.storage import AuditRow, AuditStore
    from fhir_iastm.storage.fhir_write import bound_text
    from fhir_iastm.storage.schema import audit_event, audit_event_entity

    body = {"resourceType": "AuditEvent", "note": BODY, "entity": [{"what": "Patient/p-1"}]}
    entities = (("Patient", "p-1"), ("Procedure", "x.2"))
    with store.write() as conn:  # what AuditStore.add did before the driver
        seq = conn.execute(insert(audit_event).returning(audit_event.c.seq), {
            "id": "drv-audit-a", "recorded": bound_text(WHEN), "agent": ("a" * 70)[:64],
            "body": body}).scalar_one()
        conn.execute(insert(audit_event_entity), [
            {"event_seq": seq, "ref_type": t, "ref_id": i} for t, i in entities])
    AuditStore(store).add([AuditRow("drv-audit-b", WHEN, "a" * 70, body, entities),
                           AuditRow("drv-audit-c", WHEN, "b", body, ()),
                           AuditRow("drv-audit-d", WHEN, "b", body, entities[1:])])

    def stored(event_id: str) -> tuple[Any, ...]:
        e, n = audit_event, audit_event_entity
        with store.read() as conn:
            row = conn.execute(select(e.c.seq, e.c.recorded, e.c.agent, e.c.body,
                                      type_coerce(e.c.body, Text)).where(e.c.id == event_id)).one()
            refs = conn.execute(select(n.c.ref_type, n.c.ref_id).where(n.c.event_seq == row[0])
                                .order_by(n.c.ref_type)).all()
        return (*row[1:], [tuple(r) for r in refs])

    assert stored("drv-audit-b") == stored("drv-audit-a")
    assert stored("drv-audit-c")[3] == stored("drv-audit-a")[3]
    assert stored("drv-audit-c")[-1] == []
    assert stored("drv-audit-d")[-1] == [entities[1]]
