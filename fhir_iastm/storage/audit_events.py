"""The facade's AuditEvents: append in batches, read one, search by date, agent and entity.

``AuditStore(store)`` shares the store's engine and transaction discipline. Rows are only ever
appended (no update, no delete). ``recorded`` is fixed-width UTC bound text, so the date
comparisons are the facade's (``fhir_search``) on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, insert, or_, select
from sqlalchemy.sql.elements import ColumnElement

from fhir_iastm.storage.driver import run
from fhir_iastm.storage.fhir_search import date_condition
from fhir_iastm.storage.fhir_types import DateMatch
from fhir_iastm.storage.fhir_write import bound_text
from fhir_iastm.storage.schema import audit_event, audit_event_entity

if TYPE_CHECKING:
    from fhir_iastm.storage.store import Store

E = audit_event
N = audit_event_entity
#: the INSERTs of a batch of events, then of their entities (each naming its event by id),
#: compiled once by the driver module (``driver.run``) and run once per batch
_INSERT_EVENT = insert(E)
_INSERT_ENTITY = insert(N).from_select(
    ["event_seq", "ref_type", "ref_id"],
    select(E.c.seq, bindparam("ref_type", type_=N.c.ref_type.type),
           bindparam("ref_id", type_=N.c.ref_id.type))
    .where(E.c.id == bindparam("event_id", type_=E.c.id.type)))


@dataclass(frozen=True)
class AuditRow:
    """One AuditEvent to store: its id, time, agent, body and the (type, id) of its entities."""

    id: str
    recorded: datetime
    agent: str
    body: dict[str, Any] = field(repr=False)
    entities: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AuditQuery:
    """A search: every date must match, any agent, every (type or None, id) reference, any id;
    newest first, ``after`` the keyset position (recorded, seq) of the previous page."""

    dates: tuple[DateMatch, ...] = ()
    agents: tuple[str, ...] = ()
    references: tuple[tuple[str | None, str], ...] = ()
    ids: tuple[str, ...] = ()
    count: int = 50
    after: tuple[str | None, int] | None = None


def _where(query: AuditQuery) -> list[ColumnElement[bool]]:
    where = [date_condition(E.c.recorded, E.c.recorded, m) for m in query.dates]
    if query.agents:
        where.append(E.c.agent.in_(query.agents))
    if query.ids:
        where.append(E.c.id.in_(query.ids))
    for rtype, rid in query.references:
        found = select(N.c.event_seq).where(N.c.ref_id == rid)
        if rtype is not None:
            found = found.where(N.c.ref_type == rtype)
        where.append(E.c.seq.in_(found))
    if query.after is not None:
        recorded, seq = query.after
        where.append(or_(E.c.recorded < recorded, and_(E.c.recorded == recorded, E.c.seq < seq)))
    return where


class AuditStore:
    """AuditEvents in the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, rows: Sequence[AuditRow]) -> None:
        """Append AuditEvents, all in one transaction."""
        if not rows:
            return
        with self.store.write() as conn:
            run(conn, _INSERT_EVENT, [
                {"id": row.id, "recorded": bound_text(row.recorded), "agent": row.agent[:64],
                 "body": row.body} for row in rows])
            run(conn, _INSERT_ENTITY, [{"event_id": row.id, "ref_type": t, "ref_id": i}
                                       for row in rows for t, i in row.entities])

    def read(self, event_id: str) -> dict[str, Any] | None:
        """One AuditEvent by id (None when unknown)."""
        with self.store.read() as conn:
            body = conn.execute(select(E.c.body).where(E.c.id == event_id)).scalar()
        return None if body is None else dict(body)

    def search(self, query: AuditQuery) -> tuple[list[dict[str, Any]],
                                                 tuple[str | None, int] | None]:
        """A page of matching AuditEvents, newest first, and the next page's position."""
        stmt = (select(E.c.seq, E.c.recorded, E.c.body).where(*_where(query))
                .order_by(E.c.recorded.desc(), E.c.seq.desc()).limit(query.count + 1))
        with self.store.read() as conn:
            rows = conn.execute(stmt).all()
        page = rows[:query.count]
        after = (page[-1].recorded, page[-1].seq) if len(rows) > query.count else None
        return [dict(r.body) for r in page], after


__all__ = ["AuditQuery", "AuditRow", "AuditStore"]
