"""The push outbox — claim with a lease, then complete, retry later or dead-letter.

Functions take an open ``Connection`` and never commit.

Ordering and locking (docs/decisions.md#d9, docs/push.md): only the *head* of a session — its
pending
entry with the lowest (record_version, id) — can be claimed, and only while no lease on it is live.
So a session has at most one entry in flight, whatever the number of workers, and its versions go
out in record_version order. On PostgreSQL the candidate row is locked ``FOR UPDATE SKIP LOCKED``,
so concurrent claimers pass over each other's rows instead of waiting; on SQLite the whole claim
runs under ``BEGIN IMMEDIATE`` (one writer at a time). A lease that expires (crashed or killed
worker) makes the entry claimable again; the old holder's later ``complete`` fails with
``LeaseLostError`` because the claim token changed. Delivery is therefore at-least-once, and the
push itself (conditional PUTs, docs/decisions.md#d6) makes a repeated push of one version harmless.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    case,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)

from fhir_iastm.errors import LeaseLostError
from fhir_iastm.storage.queries import update_sync
from fhir_iastm.storage.schema import UtcDateTime, outbox, record_versions, sync_state
from fhir_iastm.storage.types import LastPushed, OutboxItem, OutcomeLike

_INSERT_ENTRY = insert(outbox).returning(outbox.c.id)


def insert_entry(conn: Connection, session_id: str, version: int, now: datetime) -> int:
    """Add an outbox entry for one version, due now; returns its id."""
    row = {"session_id": session_id, "record_version": version, "attempts": 0}
    result = conn.execute(_INSERT_ENTRY, {**row, "created_at": now, "next_attempt_at": now})
    return int(result.scalar_one())


def request_push(conn: Connection, session_id: str, version: int, now: datetime) -> int:
    """Make ``version`` due now: reuse its pending entry (not touching one in flight) or add one."""
    pending = conn.execute(
        select(outbox.c.id).where(
            outbox.c.session_id == session_id,
            outbox.c.record_version == version,
            outbox.c.done_at.is_(None),
        )
    ).scalar()
    if pending is None:
        return insert_entry(conn, session_id, version, now)
    conn.execute(
        update(outbox)
        .where(outbox.c.id == pending, _not_in_flight(now))
        .values(next_attempt_at=now)
    )
    return int(pending)


def _not_in_flight(now: datetime) -> Any:
    return or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= now)


def _claim_statement() -> Select[Any]:
    """The oldest due, unleased head-of-session entry; FOR UPDATE SKIP LOCKED on PostgreSQL."""
    o, p = outbox.alias("o"), outbox.alias("p")
    now = bindparam("b_now", type_=UtcDateTime())
    earlier = select(literal(1)).where(
        p.c.session_id == o.c.session_id,
        p.c.done_at.is_(None),
        or_(
            p.c.record_version < o.c.record_version,
            and_(p.c.record_version == o.c.record_version, p.c.id < o.c.id),
        ),
    )
    rv, ss = record_versions, sync_state
    return (
        select(
            o.c.id,
            o.c.session_id,
            o.c.record_version,
            o.c.attempts,
            rv.c.record_hash,
            rv.c.body,
            ss.c.pushed_version,
            ss.c.pushed_hash,
            ss.c.pushed_identifiers,
            ss.c.fhir_ids,
        )
        .join(
            rv, and_(rv.c.session_id == o.c.session_id, rv.c.record_version == o.c.record_version)
        )
        .join(ss, ss.c.session_id == o.c.session_id)
        .where(
            o.c.done_at.is_(None),
            o.c.next_attempt_at <= now,
            or_(o.c.claimed_until.is_(None), o.c.claimed_until <= now),
            ~exists(earlier),
        )
        .order_by(o.c.next_attempt_at, o.c.id)
        .limit(1)
        .with_for_update(of=o, skip_locked=True)
    )


_CLAIM = _claim_statement()
_LEASE = update(outbox).where(outbox.c.id == bindparam("b_id"))


def claim(
    conn: Connection, worker_id: str, lease_seconds: float, now: datetime
) -> OutboxItem | None:
    """Lease the oldest due head-of-session entry to ``worker_id``; None when nothing is due."""
    candidate = conn.execute(_CLAIM, {"b_now": now}).first()
    if candidate is None:
        return None
    token, until, attempts = (
        uuid4().hex,
        now + timedelta(seconds=lease_seconds),
        candidate.attempts + 1,
    )
    lease = {"claimed_by": worker_id, "claimed_until": until, "claim_token": token}
    conn.execute(_LEASE, {"b_id": candidate.id, "attempts": attempts, **lease})
    update_sync(
        conn, candidate.session_id, {"state": "pushing", "attempts": attempts, "updated_at": now}
    )
    return OutboxItem(
        id=candidate.id,
        session_id=candidate.session_id,
        record_version=candidate.record_version,
        record_hash=candidate.record_hash,
        body=candidate.body,
        attempts=attempts,
        claimed_by=worker_id,
        claim_token=token,
        claimed_until=until,
        last_pushed=_last_pushed(candidate),
    )


def _last_pushed(row: Any) -> LastPushed | None:
    if row.pushed_version is None:
        return None
    return LastPushed(
        row.pushed_version,
        row.pushed_hash,
        tuple(row.pushed_identifiers or ()),
        dict(row.fhir_ids or {}),
    )


def _finish_entry(conn: Connection, item: OutboxItem, values: dict[str, Any]) -> None:
    """Update the entry only while this claim still holds it; else LeaseLostError."""
    result = conn.execute(
        update(outbox)
        .where(
            outbox.c.id == item.id,
            outbox.c.claim_token == item.claim_token,
            outbox.c.done_at.is_(None),
        )
        .values(**values)
    )
    if result.rowcount != 1:
        raise LeaseLostError(f"outbox entry {item.id} is no longer leased to {item.claimed_by}")


def _state_unless_pending(session_id: str, state: str) -> Any:
    """SQL: 'queued' while the session still has pending entries, else ``state``."""
    pending = exists(
        select(literal(1)).where(outbox.c.session_id == session_id, outbox.c.done_at.is_(None))
    )
    return case((pending, "queued"), else_=state)


def _update_sync(conn: Connection, session_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(sync_state).where(sync_state.c.session_id == session_id).values(**values))


def complete(conn: Connection, item: OutboxItem, outcome: OutcomeLike, now: datetime) -> None:
    """Mark a successful push done and remember what the server now holds (docs/decisions.md#d8's
    base)."""
    if outcome.status not in ("pushed", "unchanged", "superseded"):
        raise ValueError(f"complete() needs a successful outcome, not {outcome.status!r}")
    _finish_entry(conn, item, {"done_at": now, "outcome": outcome.status, "claimed_until": None})
    values: dict[str, Any] = {
        "state": _state_unless_pending(item.session_id, outcome.status),
        "attempts": 0,
        "next_retry_at": None,
        "last_error_code": None,
        "last_outcome": outcome.operation_outcome,
        "updated_at": now,
    }
    if outcome.status in ("pushed", "unchanged"):
        values.update(
            pushed_version=item.record_version, pushed_hash=item.record_hash, last_pushed_at=now
        )
        if outcome.identifiers:
            values["pushed_identifiers"] = list(outcome.identifiers)
        if outcome.fhir_ids:
            values["fhir_ids"] = dict(outcome.fhir_ids)
    _update_sync(conn, item.session_id, values)


def retry_later(
    conn: Connection, item: OutboxItem, delay: float, outcome: OutcomeLike, now: datetime,
    *, count_attempt: bool = True,
) -> None:
    """Release the lease; the entry is due again after ``delay`` seconds. Without
    ``count_attempt`` the claim's attempt is given back (the target was down, not the entry)."""
    due = now + timedelta(seconds=max(0.0, delay))
    attempts = item.attempts if count_attempt else max(0, item.attempts - 1)
    _finish_entry(
        conn,
        item,
        {"claimed_by": None, "claimed_until": None, "claim_token": None, "next_attempt_at": due,
         "attempts": attempts},
    )
    _update_sync(
        conn,
        item.session_id,
        {
            "state": "queued",
            "attempts": attempts,
            "next_retry_at": due,
            "last_error_code": outcome.error_code,
            "last_outcome": outcome.operation_outcome,
            "updated_at": now,
        },
    )


def dead_letter(conn: Connection, item: OutboxItem, outcome: OutcomeLike, now: datetime) -> None:
    """Finish a finally rejected entry; keep the error code and OperationOutcome on the session."""
    _finish_entry(conn, item, {"done_at": now, "outcome": "dead-letter", "claimed_until": None})
    _update_sync(
        conn,
        item.session_id,
        {
            "state": _state_unless_pending(item.session_id, "dead-letter"),
            "attempts": item.attempts,
            "next_retry_at": None,
            "last_error_code": outcome.error_code or "E_PUSH_REJECTED",
            "last_outcome": outcome.operation_outcome,
            "updated_at": now,
        },
    )


def extend_lease(
    conn: Connection, item: OutboxItem, lease_seconds: float, now: datetime
) -> OutboxItem:
    """Push the lease's end to now + ``lease_seconds`` (only while this claim holds it)."""
    until = now + timedelta(seconds=lease_seconds)
    _finish_entry(conn, item, {"claimed_until": until})
    return replace(item, claimed_until=until)


def prune(conn: Connection, before: datetime) -> int:
    """Delete finished entries older than ``before``; returns how many."""
    result = conn.execute(
        delete(outbox).where(outbox.c.done_at.is_not(None), outbox.c.done_at < before)
    )
    return int(result.rowcount)


__all__ = [
    "prune",
    "claim",
    "complete",
    "dead_letter",
    "extend_lease",
    "insert_entry",
    "request_push",
    "retry_later",
]
