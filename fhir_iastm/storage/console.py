"""The clinic console's reads and its two bookkeeping writes (docs/console.md).

:class:`ConsoleStore` wraps a :class:`~fhir_iastm.storage.Store`: the newest-first sessions list
(keyset-paged on ``(session_start, session_id)``, indexed by migration 0008), a patient's records
with their sync states, an outbox overview, the dead letters, a session's push history, and
"mark resolved" for a dead letter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select, tuple_, update

from fhir_iastm.storage import queries as q
from fhir_iastm.storage.schema import audit, outbox, record_versions, records, sync_state
from fhir_iastm.storage.store import Store


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """The sessions list's filters; dates are ``YYYY-MM-DD`` (inclusive), None = any."""

    clinic: str | None = None
    therapist: str | None = None
    patient: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    status: str | None = None
    sync: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One row of the sessions list: the current record body and its sync state."""

    session_id: str
    session_start: str
    status: str
    record_version: int
    body: dict[str, Any]
    sync_state: str | None
    sync_updated_at: datetime | None
    last_error_code: str | None


@dataclass(frozen=True, slots=True)
class RowPage:
    rows: list[SessionRow]
    #: (session_start, session_id) of the last row when more rows follow
    next_key: tuple[str, str] | None


def _day_after(day: str) -> str:
    return (datetime.strptime(day, "%Y-%m-%d") + timedelta(days=1)).strftime("%Y-%m-%d")


def _filtered(stmt: Select[Any], f: SessionFilter) -> Select[Any]:
    r = records.c
    conditions = [
        (f.clinic, lambda v: r.clinic_id == v),
        (f.therapist, lambda v: r.therapist_npi == v),
        (f.patient, lambda v: r.patient_mrn == v),
        (f.date_from, lambda v: r.session_start >= v),
        (f.date_to, lambda v: r.session_start < _day_after(v)),
        (f.status, lambda v: r.status == v),
    ]
    for value, make in conditions:
        if value is not None:
            stmt = stmt.where(make(value))
    return stmt


#: Sync states a working store holds few sessions in: filtered by one of them, the list starts
#: from sync_state's state index and sorts those few; filtered by another (pushed, unchanged:
#: most sessions), or by a rare one and a clinic, therapist, patient or status, it walks those
#: sessions newest first (their index) and keeps the matching ones (docs/console.md#sessions).
#: The expressions below steer the planner: an indexed column wrapped in ``|| ''`` cannot use
#: its index.
RARE_SYNC_STATES = frozenset({"queued", "pushing", "dead-letter", "resolved", "superseded"})


def _keys_statement(f: SessionFilter, after: tuple[str, str] | None, limit: int
                    ) -> Select[Any]:
    """The page's (session_id, session_start) only: the sort never carries a record body."""
    start: Any = records.c.session_start
    stmt: Select[Any] = select(records.c.session_id, records.c.session_start)
    if f.sync is not None:
        state: Any = sync_state.c.state
        narrowed = f.clinic or f.therapist or f.patient or f.status
        if f.sync in RARE_SYNC_STATES and not narrowed:
            start = start.concat("")
        else:
            state = state.concat("")
        stmt = stmt.join(sync_state, sync_state.c.session_id == records.c.session_id).where(
            state == f.sync)
    stmt = _filtered(stmt, replace(f, sync=None))
    if after is not None:
        stmt = stmt.where(tuple_(records.c.session_start, records.c.session_id) < tuple_(*after))
    return stmt.order_by(start.desc(), records.c.session_id.desc()).limit(limit)


def _rows_statement(session_ids: list[str]) -> Select[Any]:
    rv, ss = record_versions, sync_state
    return (
        select(records.c.session_id, records.c.session_start, records.c.status,
               records.c.record_version, rv.c.body, ss.c.state, ss.c.updated_at,
               ss.c.last_error_code)
        .join(rv, and_(rv.c.session_id == records.c.session_id,
                       rv.c.record_version == records.c.record_version))
        .outerjoin(ss, ss.c.session_id == records.c.session_id)
        .where(records.c.session_id.in_(session_ids))
    )


class ConsoleStore:
    """The console's queries over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def sessions(self, f: SessionFilter, after: tuple[str, str] | None = None,
                 limit: int = 50) -> RowPage:
        """Newest session first (by its start text), after the keyset ``after``."""
        limit = max(1, min(limit, 1000))
        with self.store.read() as conn:
            keys = conn.execute(_keys_statement(f, after, limit + 1)).all()
            ids = [k.session_id for k in keys[:limit]]
            found = {row.session_id: row for row in conn.execute(_rows_statement(ids))}
        rows = [SessionRow(*found[sid]) for sid in ids]
        more = len(keys) > limit
        return RowPage(rows, (rows[-1].session_start, rows[-1].session_id) if more else None)

    def patient_records(self, mrn: str, limit: int = 1000) -> list[SessionRow]:
        """A patient's current records (any clinic), oldest first."""
        page = self.sessions(SessionFilter(patient=mrn), limit=limit)
        return page.rows[::-1]

    def push_history(self, session_id: str) -> list[dict[str, Any]]:
        """Every outbox entry of a session (newest first): version, attempts, outcome, times."""
        stmt = (select(outbox.c.id, outbox.c.record_version, outbox.c.created_at,
                       outbox.c.attempts, outbox.c.next_attempt_at, outbox.c.done_at,
                       outbox.c.outcome)
                .where(outbox.c.session_id == session_id).order_by(outbox.c.id.desc()))
        with self.store.read() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def overview(self) -> dict[str, Any]:
        """Outbox counts, sessions by sync state, the oldest queued entry, pushes done in the
        last hour and day."""
        now = self.store.clock()
        pending = outbox.c.done_at.is_(None)
        done = outbox.c.outcome.in_(("pushed", "unchanged", "superseded"))
        with self.store.read() as conn:
            oldest = conn.execute(select(func.min(outbox.c.created_at)).where(pending)).scalar()
            hour, day = conn.execute(select(
                func.count().filter(and_(done, outbox.c.done_at >= now - timedelta(hours=1))),
                func.count().filter(and_(done, outbox.c.done_at >= now - timedelta(days=1))),
            )).one()
            return {"outbox": q.outbox_counts(conn, now), "sync": q.sync_counts(conn),
                    "oldest_queued": oldest, "pushed_last_hour": hour, "pushed_last_day": day,
                    "now": now}

    def dead_letters(self, error_code: str | None = None, limit: int = 200
                     ) -> list[dict[str, Any]]:
        """Sessions whose push was finally rejected, newest first, with the server's answer."""
        ss = sync_state
        stmt = (select(ss.c.session_id, ss.c.last_error_code, ss.c.last_outcome,
                       ss.c.attempts, ss.c.updated_at, records.c.record_version)
                .join(records, records.c.session_id == ss.c.session_id)
                .where(ss.c.state == "dead-letter")
                .order_by(ss.c.updated_at.desc(), ss.c.session_id).limit(limit))
        if error_code is not None:
            stmt = stmt.where(ss.c.last_error_code == error_code)
        with self.store.read() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def dead_letter_kinds(self) -> Mapping[str, int]:
        """Dead letters by error code."""
        ss = sync_state
        stmt = (select(ss.c.last_error_code, func.count()).where(ss.c.state == "dead-letter")
                .group_by(ss.c.last_error_code).order_by(func.count().desc()))
        with self.store.read() as conn:
            return {code or "": n for code, n in conn.execute(stmt)}

    def resolve(self, session_id: str, actor: str | None) -> bool:
        """Mark a dead letter resolved (handled outside fhir-iastm); False if it was none."""
        now = self.store.clock()
        with self.store.write() as conn:
            result = conn.execute(
                update(sync_state)
                .where(sync_state.c.session_id == session_id, sync_state.c.state == "dead-letter")
                .values(state="resolved", updated_at=now))
            if result.rowcount != 1:
                return False
            q.add_audit(conn, now, actor, "resolve", session_id, None)
            return True

    def audit_of(self, session_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """A session's audit rows, newest first."""
        stmt = (select(audit.c.ts, audit.c.actor, audit.c.action, audit.c.outcome)
                .where(audit.c.session_id == session_id).order_by(audit.c.id.desc()).limit(limit))
        with self.store.read() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]


__all__ = ["ConsoleStore", "RowPage", "SessionFilter", "SessionRow"]
