"""Store record versions, one or a batch per transaction, with a fixed number of statements.

``Store.save_record`` (``POST /api/sessions``) is a batch of one; ``Store.save_records``
(``fhir-iastm import``) stores many. Each record is decided in order exactly as if it were
alone (docs/decisions.md#d15: created, new version, unchanged, or refused by a 409 before it
writes anything), against the stored rows read once for the batch and the batch's own earlier
records; then every table gets one ``executemany`` through the driver (``storage.driver``; the
outbox one multi-row INSERT whose ids come back in parameter order, or one INSERT … RETURNING for
a single record) and the FHIR resources one ``write_many``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, select, update

from fhir_iastm.errors import ConflictRecordError
from fhir_iastm.storage import driver
from fhir_iastm.storage import queries as q
from fhir_iastm.storage.fhir_types import JsonText, ResourceSet
from fhir_iastm.storage.fhir_write import bound_text, write_many
from fhir_iastm.storage.schema import audit, outbox, record_versions, records, sync_state
from fhir_iastm.storage.types import SaveResult

if TYPE_CHECKING:
    from fhir_iastm.records.model import SessionRecord

#: What a save stores per record: (record, raw body — or its ``JsonText`` — resources or None,
#: record hash).
RecordWrite = tuple["SessionRecord", dict[str, Any] | JsonText, ResourceSet | None, str]

_LOCK = (
    select(records.c.session_id, records.c.record_version, records.c.record_hash)
    .order_by(records.c.session_id)
    .with_for_update()
)
_LOCK_MANY = _LOCK.where(records.c.session_id.in_(bindparam("sids", expanding=True)))
_INSERT_RECORD = insert(records)
_UPDATE_RECORD = update(records).where(records.c.session_id == bindparam("b_sid"))
_INSERT_VERSION = insert(record_versions)
_INSERT_ENTRY = insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True)
#: The same rows with their ids given (``driver.new_keys``).
_INSERT_ENTRY_KEYED = insert(outbox)
_INSERT_SYNC = insert(sync_state)
_UPDATE_SYNC = update(sync_state).where(sync_state.c.session_id == bindparam("b_sid"))
_INSERT_AUDIT = insert(audit)


class _Rows:
    """The rows of one batch, per statement, in record order."""

    def __init__(self) -> None:
        self.by_statement: dict[Any, list[dict[str, Any]]] = {}
        self.saved: list[tuple[int, SaveResult]] = []  # (result slot, result without outbox id)
        self.resources: list[tuple[str, ResourceSet, str]] = []

    def add(self, statement: Any, row: dict[str, Any]) -> None:
        self.by_statement.setdefault(statement, []).append(row)


def save_batch(
    conn: Connection, items: Sequence[RecordWrite], actor: str | None,
    clock: Callable[[], datetime],
) -> list[SaveResult | ConflictRecordError]:
    """Store ``items`` in order in the open transaction (see the module docstring)."""
    current = _lock_records(conn, list(dict.fromkeys(item[0].session_id for item in items)))
    rows = _Rows()
    out: list[SaveResult | ConflictRecordError] = []
    who = actor and actor[:64]  # a token's name cut to the column width, never the token
    for item in items:
        result = _decide(item, current.get(item[0].session_id), clock, rows, len(out), who)
        out.append(result)
        if not isinstance(result, ConflictRecordError):
            current[result.session_id] = (result.record_version, result.record_hash)
            rows.add(_INSERT_AUDIT, {"ts": clock(), "actor": who, "action": "save",
                                     "session_id": result.session_id, "outcome": result.status})
    for statement in (_INSERT_RECORD, _UPDATE_RECORD, _INSERT_VERSION, _INSERT_SYNC,
                      _UPDATE_SYNC, _INSERT_AUDIT):
        driver.run(conn, statement, rows.by_statement.get(statement, ()))
    if rows.saved:
        ids = _insert_entries(conn, rows.by_statement[_INSERT_ENTRY])
        for (slot, saved), entry in zip(rows.saved, ids, strict=True):
            out[slot] = SaveResult(saved.status, saved.session_id, saved.record_version,
                                   saved.record_hash, int(entry))
    write_many(conn, rows.resources)
    return out


def _insert_entries(conn: Connection, entries: list[dict[str, Any]]) -> list[int]:
    """The outbox entries, in record order; their ids."""
    if not driver.fast(conn):
        return list(conn.execute(_INSERT_ENTRY, entries).scalars().all())
    ids = driver.new_keys(conn, outbox.c.id, len(entries))
    driver.run(conn, _INSERT_ENTRY_KEYED, [{"id": key, **entry}
                                           for key, entry in zip(ids, entries, strict=True)])
    return ids


def _lock_records(conn: Connection, sids: list[str]) -> dict[str, tuple[int, str]]:
    """Each stored session's (version, record hash), its row locked (``_LOCK_MANY``; through
    the driver, its IN list as a ``driver.in_list``)."""
    if not sids:
        return {}
    if not driver.fast(conn, len(sids)):
        rows: Any = conn.execute(_LOCK_MANY, {"sids": sids})
    else:
        found = driver.in_list(conn, "s", sids)
        rows = driver.select_fixed(conn, ("lock-records", found.size),
                                   lambda: _LOCK.where(found.clause(records.c.session_id)),
                                   found.params)
    return {sid: (version, digest) for sid, version, digest in rows}


def _decide(
    item: RecordWrite, stored: tuple[int, str] | None, clock: Callable[[], datetime],
    rows: _Rows, slot: int, who: str | None,
) -> SaveResult | ConflictRecordError:
    """One record against the stored (or earlier in the batch) version: its rows, its result."""
    record, raw, resources, digest = item
    sid, version = record.session_id, record.record_version
    if stored is not None:
        try:
            q.check_decision_15(sid, version, digest, *stored)
        except ConflictRecordError as exc:
            return exc
        if version == stored[0]:
            return SaveResult("unchanged", sid, version, digest)
    now = clock()
    row = {"record_version": version, "record_hash": digest, "status": record.status,
           "clinic_id": record.clinic.clinic_id, "patient_mrn": record.patient.mrn,
           "therapist_npi": record.therapist.npi, "session_start": record.session.start,
           "updated_at": now,
           "indexed_version": version if resources is not None else None}
    if stored is None:
        rows.add(_INSERT_RECORD, {"session_id": sid, "created_at": now, **row})
        rows.add(_INSERT_SYNC, {"session_id": sid, "state": "queued", "attempts": 0,
                                "updated_at": now})
    else:
        rows.add(_UPDATE_RECORD, {"b_sid": sid, **row})
        rows.add(_UPDATE_SYNC, {"b_sid": sid, "state": "queued", "attempts": 0,
                                "next_retry_at": None, "updated_at": now})
    rows.add(_INSERT_VERSION, {"session_id": sid, "record_version": version,
                               "record_hash": digest, "body": raw, "received_at": now,
                               "actor": who})
    rows.add(_INSERT_ENTRY, {"session_id": sid, "record_version": version, "attempts": 0,
                             "created_at": now, "next_attempt_at": now})
    if resources is not None:
        rows.resources.append((sid, resources, bound_text(now)))
    saved = SaveResult("created" if stored is None else "new-version", sid, version, digest)
    rows.saved.append((slot, saved))
    return saved


__all__ = ["RecordWrite", "save_batch"]
