"""Record, sync-state and audit statements ``Store`` runs in its transactions.

Functions take an open ``Connection`` and never commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, insert, or_, select, update

from fhir_iastm.errors import ConflictRecordError, Issue
from fhir_iastm.storage.schema import (
    audit,
    outbox,
    pushed_canonical_base,
    record_versions,
    records,
    sync_state,
)
from fhir_iastm.storage.types import LastPushed, StoredRecord, SyncState

# Statements built once: executing them with parameter dicts skips SQLAlchemy's per-call
# construction and cache-key work on the hot path (save, claim).
_LOCK_RECORD = (
    select(records.c.record_version, records.c.record_hash)
    .where(records.c.session_id == bindparam("b_sid"))
    .with_for_update()
)
_INSERT_SYNC = insert(sync_state)
_UPDATE_SYNC = update(sync_state).where(sync_state.c.session_id == bindparam("b_sid"))
_INSERT_AUDIT = insert(audit)


def lock_record(conn: Connection, session_id: str) -> Row[Any, Any] | None:
    """The session's records row, locked FOR UPDATE on PostgreSQL (SQLite holds the write lock)."""
    return conn.execute(_LOCK_RECORD, {"b_sid": session_id}).first()


def update_sync(conn: Connection, session_id: str, values: dict[str, Any]) -> None:
    """Set plain values on a session's sync_state row."""
    conn.execute(_UPDATE_SYNC, {"b_sid": session_id, **values})


def set_queued(conn: Connection, session_id: str, now: datetime, *, created: bool) -> None:
    """Mark a session queued for push (first save creates its sync_state row)."""
    if created:
        conn.execute(
            _INSERT_SYNC,
            {"session_id": session_id, "state": "queued", "attempts": 0, "updated_at": now},
        )
        return
    update_sync(
        conn,
        session_id,
        {"state": "queued", "attempts": 0, "next_retry_at": None, "updated_at": now},
    )


def add_audit(
    conn: Connection,
    now: datetime,
    actor: str | None,
    action: str,
    session_id: str | None,
    outcome: str | None,
) -> None:
    """Append one audit row (no PHI: names of things, never their values)."""
    row = {"ts": now, "actor": actor and actor[:64], "action": action}
    conn.execute(_INSERT_AUDIT, {**row, "session_id": session_id, "outcome": outcome})


def select_records(
    conn: Connection,
    *,
    session_id: str | None = None,
    version: int | None = None,
    patient: str | None = None,
    since: datetime | None = None,
    status: str | None = None,
    sync: str | None = None,
    after: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[StoredRecord]:
    """Records (current version unless ``version``) matching every filter given, by session_id."""
    rv = record_versions
    wanted = rv.c.record_version == (version if version is not None else records.c.record_version)
    stmt = (
        select(records.c.status, records.c.record_version.label("current"), rv)
        .join(rv, and_(rv.c.session_id == records.c.session_id, wanted))
        .order_by(records.c.session_id)
    )
    if session_id is not None:
        stmt = stmt.where(records.c.session_id == session_id)
    if patient is not None:
        stmt = stmt.where(records.c.patient_mrn == patient)
    if since is not None:
        stmt = stmt.where(records.c.updated_at >= since)
    if status is not None:
        stmt = stmt.where(records.c.status == status)
    if after is not None:
        stmt = stmt.where(records.c.session_id > after)
    if sync is not None:
        stmt = stmt.join(sync_state, sync_state.c.session_id == records.c.session_id).where(
            sync_state.c.state == sync
        )
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return [_stored(row) for row in conn.execute(stmt)]


_EARLIER = (
    select(record_versions.c.session_id, record_versions.c.record_version,
           record_versions.c.body)
    .where(record_versions.c.session_id.in_(bindparam("sids", expanding=True)))
    .order_by(record_versions.c.session_id, record_versions.c.record_version)
)


def select_earlier(conn: Connection, wanted: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Per session of ``wanted``, the bodies of its stored versions below the version given,
    ascending; sessions without one are left out."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(_EARLIER, {"sids": list(wanted)}):
        if row.record_version < wanted[row.session_id]:
            out.setdefault(row.session_id, []).append(row.body)
    return out


def select_unindexed(conn: Connection, after: str, limit: int, *, everything: bool
                     ) -> list[StoredRecord]:
    """Current records after ``after`` (session_id order) not indexed at their version."""
    rv = record_versions
    stmt = (
        select(records.c.status, records.c.record_version.label("current"), rv)
        .join(rv, and_(rv.c.session_id == records.c.session_id,
                       rv.c.record_version == records.c.record_version))
        .where(records.c.session_id > after)
        .order_by(records.c.session_id)
        .limit(limit)
    )
    if not everything:
        stmt = stmt.where(_unindexed())
    return [_stored(row) for row in conn.execute(stmt)]


def _unindexed() -> Any:
    return or_(records.c.indexed_version.is_(None),
               records.c.indexed_version != records.c.record_version)


def count_unindexed(conn: Connection) -> int:
    """Current records whose resources are not in the facade's tables."""
    return int(conn.execute(select(func.count()).where(_unindexed())).scalar_one())


def set_indexed(conn: Connection, session_id: str, version: int) -> None:
    """Record that a session's resources are indexed at ``version``."""
    conn.execute(update(records).where(records.c.session_id == session_id)
                 .values(indexed_version=version))


def _stored(row: Row[Any]) -> StoredRecord:
    m = row._mapping
    return StoredRecord(
        session_id=m["session_id"],
        record_version=m["record_version"],
        record_hash=m["record_hash"],
        body=m["body"],
        received_at=m["received_at"],
        status=m["status"],
        current_version=m["current"],
    )


def select_sync(conn: Connection, session_id: str) -> SyncState | None:
    """The sync_state row of a session with its current version and pending outbox count."""
    pending = (
        select(func.count())
        .where(outbox.c.session_id == session_id, outbox.c.done_at.is_(None))
        .scalar_subquery()
    )
    stmt = (
        select(sync_state, records.c.record_version.label("current"), pending.label("pending"))
        .join(records, records.c.session_id == sync_state.c.session_id)
        .where(sync_state.c.session_id == session_id)
    )
    row = conn.execute(stmt).first()
    if row is None:
        return None
    m = row._mapping
    return SyncState(
        session_id=m["session_id"],
        state=m["state"],
        current_version=m["current"],
        pushed_version=m["pushed_version"],
        pushed_hash=m["pushed_hash"],
        identifiers=tuple(m["pushed_identifiers"] or ()),
        fhir_ids=dict(m["fhir_ids"] or {}),
        attempts=m["attempts"],
        next_retry_at=m["next_retry_at"],
        last_pushed_at=m["last_pushed_at"],
        last_error_code=m["last_error_code"],
        last_outcome=m["last_outcome"],
        pending=m["pending"],
        updated_at=m["updated_at"],
    )


def select_last_pushed(conn: Connection, session_id: str) -> LastPushed | None:
    """What the server last accepted for a session, or None if nothing was ever pushed."""
    row = conn.execute(
        select(
            sync_state.c.pushed_version,
            sync_state.c.pushed_hash,
            sync_state.c.pushed_identifiers,
            sync_state.c.fhir_ids,
        ).where(sync_state.c.session_id == session_id)
    ).first()
    if row is None or row.pushed_version is None:
        return None
    return LastPushed(
        record_version=row.pushed_version,
        record_hash=row.pushed_hash,
        identifiers=tuple(row.pushed_identifiers or ()),
        fhir_ids=dict(row.fhir_ids or {}),
    )


def check_decision_15(
    sid: str, version: int, digest: str, stored_version: int, stored_hash: str
) -> None:
    """Raise the 409s of docs/decisions.md#d15; return when the record is the same or a newer
    version."""
    if version < stored_version:
        stale = ConflictRecordError(
            f"record_version {version} of session {sid} is older than the stored {stored_version}",
            [
                Issue(
                    "error",
                    "conflict",
                    "record_version",
                    f"stored record_version is {stored_version}",
                    "E_STALE_VERSION",
                )
            ],
        )
        stale.code = "E_STALE_VERSION"
        raise stale
    if version == stored_version and digest != stored_hash:
        raise ConflictRecordError(
            f"session {sid} record_version {version} was already stored with other content",
            [
                Issue(
                    "error",
                    "duplicate",
                    "session_id",
                    f"record_version {version} already stored with other content; "
                    "send a higher record_version",
                    "E_DUPLICATE_SESSION",
                )
            ],
        )


def outbox_counts(conn: Connection, now: datetime) -> dict[str, int]:
    """Outbox entries by state: pending, in_flight, done, dead-letter."""
    pending = outbox.c.done_at.is_(None)
    in_flight = and_(pending, outbox.c.claimed_until > now)
    done = outbox.c.outcome.in_(("pushed", "unchanged", "superseded"))
    row = conn.execute(
        select(
            func.count().filter(pending),
            func.count().filter(in_flight),
            func.count().filter(done),
            func.count().filter(outbox.c.outcome == "dead-letter"),
        )
    ).one()
    return {"pending": row[0], "in_flight": row[1], "done": row[2], "dead-letter": row[3]}


def sync_counts(conn: Connection) -> dict[str, int]:
    """Sessions by sync state."""
    rows = conn.execute(select(sync_state.c.state, func.count()).group_by(sync_state.c.state))
    return {state: count for state, count in rows}



def bind_canonical_base(
    conn: Connection, base: str, allow_change: bool, now: datetime
) -> str | None:
    """Record ``base`` as the store's push base; returns the other recorded base, changing
    nothing, when sessions were already pushed under it and ``allow_change`` is False."""
    table = pushed_canonical_base
    recorded = conn.execute(select(table.c.canonical_base).where(table.c.id == 1)).scalar()
    if recorded == base:
        return None
    if recorded is None:
        conn.execute(insert(table).values(id=1, canonical_base=base, recorded_at=now))
        return None
    pushed = conn.execute(
        select(sync_state.c.session_id).where(sync_state.c.pushed_version.is_not(None)).limit(1)
    ).first()
    if pushed is not None and not allow_change:
        return str(recorded)
    conn.execute(
        update(table).where(table.c.id == 1).values(canonical_base=base, recorded_at=now)
    )
    add_audit(conn, now, None, "canonical-base-change", None, None)
    return None


__all__ = [
    "bind_canonical_base",
    "check_decision_15",
    "count_unindexed",
    "select_unindexed",
    "set_indexed",
    "outbox_counts",
    "sync_counts",
    "add_audit",
    "lock_record",
    "select_last_pushed",
    "select_records",
    "select_sync",
    "set_queued",
    "update_sync",
]
