"""Write a record version's FHIR resources and their search indexes.

Runs inside the transaction that stores the record version (``Store.save_record``), so a 201 means
every process's facade already answers with the new data. Rules (documented in
``docs/facade.md``):

* a resource whose content changed gets ``version + 1``, a new ``last_updated`` and a history row;
  unchanged content keeps its version;
* a session-owned resource that a newer record version no longer emits becomes *gone* (410): a
  new version marked gone, its index rows deleted, its history kept;
* a shared resource (Patient, Practitioner, Organization) has one row; it carries the data of the
  record with the greatest ``source_key`` (newest ``recorded_at``, ties by session id) among the
  writes it has seen, whatever order processes write in.

History rows store a body only once it is no longer the current one: a history row whose
``body`` is NULL has the body of its ``fhir_resource`` row. Before a resource's body changes, its
NULL history bodies are filled from the current row, in the database (no body is read back).

A batch of record versions (``write_many``: an import batch; a POST is a batch of one) reads and
locks the rows it touches once, in primary-key order, works their versions out in memory in
record order and writes the outcome with one multi-row INSERT or ``executemany`` per table: about
a dozen statements per batch whatever its size. A version that a later one of the same batch
replaces gets its body in its history row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, insert, or_, select, update

from fhir_iastm.storage import driver
from fhir_iastm.storage.fhir_types import ResourceSet, ResourceWrite
from fhir_iastm.storage.schema import (
    INDEX_TABLES,
    fhir_date,
    fhir_link,
    fhir_resource,
    fhir_resource_version,
    fhir_string,
    fhir_token,
)

R = fhir_resource
HV = fhir_resource_version
# One multi-row INSERT … RETURNING; rows are matched back by (type, id), not by position.
_INSERT = insert(R).returning(R.c.pk, R.c.res_type, R.c.res_id)
#: The same rows with their keys given (SQLite: ``_insert_rows``).
_INSERT_KEYED = insert(R)
_UPDATE = update(R).where(R.c.pk == bindparam("b_pk"))
_INSERT_HISTORY = insert(HV)
#: History rows are written without a body (NULL: the resource row's, see the docstring).
_HISTORY_COLUMNS = ("res_pk", "version", "last_updated", "gone")


def bound_text(value: datetime) -> str:
    """An aware datetime as stored bound text (UTC, microseconds, fixed width)."""
    v = value.astimezone(UTC)
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:"
            f"{v.second:02d}.{v.microsecond:06d}")


def write_resources(conn: Connection, session_id: str, rset: ResourceSet, now: str) -> None:
    """Store the resources of one record version of ``session_id`` (see the module docstring)."""
    write_many(conn, [(session_id, rset, now)])


def write_many(conn: Connection, writes: Sequence[tuple[str, ResourceSet, str]]) -> None:
    """Store the resources of several record versions, in order, exactly as one
    ``write_resources`` each would, with about a dozen statements for the whole batch: the rows
    they touch are read (and locked) once, the versions are worked out in memory and the final
    state of each resource, its history and its index rows are written at the end."""
    if not writes:
        return
    batch = _Batch(_lock_current(conn, writes))
    for session_id, rset, now in writes:
        batch.apply(session_id, rset, now)
    batch.flush(conn)


def _lock_current(conn: Connection, writes: Sequence[tuple[str, ResourceSet, str]]
                  ) -> list[_State]:
    """The rows of the resources written (by type and id), and the sessions' own rows (to find
    dropped ones)."""
    ids: dict[str, dict[str, None]] = {}
    for _, rset, _ in writes:
        for item in rset.resources:
            ids.setdefault(item.resource_type, {})[item.resource_id] = None
    sids = list(dict.fromkeys(sid for sid, _, _ in writes))
    if driver.fast(conn, len(sids) + sum(map(len, ids.values()))):
        rows = _lock_shaped(conn, ids, sids)
    else:
        params: dict[str, Any] = {"sids": sids}
        for n, (res_type, res_ids) in enumerate(ids.items()):
            params[f"t{n}"], params[f"ids{n}"] = res_type, list(res_ids)
        rows = list(conn.execute(_current(len(ids)), params))
    return [_State(pk, res_type, res_id, version, bool(gone), bool(shared), content_hash,
                   source_key, session_id, last_updated)
            for (pk, res_type, res_id, version, gone, shared, content_hash, source_key,
                 session_id, last_updated) in rows]


def _lock_shaped(conn: Connection, ids: dict[str, dict[str, None]], sids: list[str]
                 ) -> list[Any]:
    """``_current``'s read with each IN list as a ``driver.in_list``: one compiled statement
    per shape (the number of types and the size of each list)."""
    own = driver.in_list(conn, "s", sids)
    lists = [driver.in_list(conn, f"i{n}", list(res_ids)) for n, res_ids in enumerate(ids.values())]
    values = dict(own.params)
    for n, (res_type, found) in enumerate(zip(ids, lists, strict=True)):
        values.update(found.params)
        values[f"t{n}"] = res_type
    shape = (own.size, tuple(found.size for found in lists))
    return driver.select_fixed(conn, ("lock", shape),
                               lambda: _current_shape(own, lists), values)


@cache
def _current(types: int) -> Any:
    """The locking read of ``_lock_current`` for ``types`` resource types: per type
    ``res_type = :tN AND res_id IN (:idsN)`` (the unique (res_type, res_id) index; no index on
    ``res_id`` alone is kept, docs/performance.md#indexes), or the sessions' own rows."""
    by_type = (and_(R.c.res_type == bindparam(f"t{n}"),
                    R.c.res_id.in_(bindparam(f"ids{n}", expanding=True))) for n in range(types))
    return _current_where(by_type, R.c.session_id.in_(bindparam("sids", expanding=True)))


def _current_shape(own: driver.InList, lists: list[driver.InList]) -> Any:
    """``_current`` with the IN lists of ``driver.in_list``."""
    by_type = (and_(R.c.res_type == bindparam(f"t{n}"), found.clause(R.c.res_id))
               for n, found in enumerate(lists))
    return _current_where(by_type, own.clause(R.c.session_id))


def _current_where(by_type: Iterable[Any], own_sessions: Any) -> Any:
    return (
        select(R.c.pk, R.c.res_type, R.c.res_id, R.c.version, R.c.gone, R.c.shared,
               R.c.content_hash, R.c.source_key, R.c.session_id, R.c.last_updated)
        .where(or_(*by_type, and_(own_sessions, ~R.c.shared)))
        .order_by(R.c.pk)
        .with_for_update()
    )


@dataclass(slots=True, eq=False)
class _State:
    """A resource row as the batch has made it so far (``pk`` None: inserted at the end)."""

    pk: int | None
    res_type: str
    res_id: str
    version: int
    gone: bool
    shared: bool
    content_hash: str
    source_key: str
    session_id: str
    last_updated: str
    item: ResourceWrite | None = None  # whose body is current (None: the stored body)
    touched: bool = False  # the row needs writing
    reindex: bool = False  # its index rows need writing (from ``item``) or deleting (gone)

    @property
    def key(self) -> tuple[str, str]:
        return self.res_type, self.res_id


@dataclass(slots=True, eq=False)
class _Version:
    """A history row to write: ``item`` None for a version sharing the stored body."""

    state: _State
    version: int
    last_updated: str
    gone: bool
    item: ResourceWrite | None


class _Batch:
    """The resource rows of one batch and the versions it adds (see ``write_many``)."""

    def __init__(self, rows: list[_State]) -> None:
        self.states = {row.key: row for row in rows}
        self.by_session: dict[str, list[_State]] = {}
        for row in rows:
            self._place(row)
        self.versions: list[_Version] = []

    def _place(self, state: _State) -> None:
        if not state.shared:
            self.by_session.setdefault(state.session_id, []).append(state)

    def apply(self, session_id: str, rset: ResourceSet, now: str) -> None:
        """One record version's resources, with ``write_resources``'s rules."""
        seen: set[tuple[str, str]] = set()
        for item in rset.resources:
            key = (item.resource_type, item.resource_id)
            seen.add(key)
            state = self.states.get(key)
            if state is None:
                state = _State(None, *key, 0, False, item.shared, "", rset.source_key,
                               session_id, now)
                self.states[key] = state
                self._place(state)
                self._new_version(state, now, item)
            elif item.shared and rset.source_key < state.source_key:
                continue  # a newer record carries this shared resource
            elif state.gone or state.content_hash != item.content_hash:
                self._new_version(state, now, item)
            elif item.shared and state.source_key != rset.source_key:
                state.source_key, state.session_id, state.touched = (
                    rset.source_key, session_id, True)
                continue
            else:
                continue
            if not state.shared and state.session_id != session_id:
                self.by_session.setdefault(session_id, []).append(state)
            state.session_id, state.source_key = session_id, rset.source_key
        for state in self._dropped(session_id, seen):
            self._new_version(state, now, None)

    def _dropped(self, session_id: str, seen: set[tuple[str, str]]
                 ) -> list[_State]:
        """The session's own live resources that this record no longer emits (what
        ``write_resources`` reads besides the resources written, by type and id)."""
        own = self.by_session.get(session_id, ())
        dropped = {id(s): s for s in own if s.session_id == session_id and not s.shared
                   and not s.gone and s.key not in seen}
        return list(dropped.values())

    def _new_version(self, state: _State, now: str, item: ResourceWrite | None) -> None:
        """``item``: the new content; None: the resource is retracted (gone)."""
        state.version += 1
        state.last_updated, state.touched, state.reindex = now, True, True
        state.gone = item is None
        if item is not None:
            state.item, state.content_hash = item, item.content_hash
        self.versions.append(_Version(state, state.version, now, state.gone, state.item))

    def flush(self, conn: Connection) -> None:
        """Write the final rows, the history and the index of everything the batch changed."""
        touched = [s for s in self.states.values() if s.touched]
        old = [s for s in touched if s.pk is not None]
        replaced = [s.pk for s in old if s.item is not None and s.pk is not None]
        shared_old = [v for v in self.versions if v.item is None and v.state.item is not None]
        _insert_history(conn, shared_old, stored_body=True)  # copied just below
        if replaced:
            _keep_history_bodies(conn, replaced)
        _update_rows(conn, old)
        _insert_rows(conn, [s for s in touched if s.pk is None])
        _insert_history(conn, [v for v in self.versions if v not in shared_old])
        stale = [s.pk for s in old if s.reindex and s.pk is not None]
        _reindex(conn, [(s.pk, s.item) for s in touched
                        if s.reindex and not s.gone and s.item is not None and s.pk], stale)


def _update_rows(conn: Connection, states: list[_State]) -> None:
    """The stored rows the batch changed, in primary-key order (a new body where one came)."""
    plain: list[dict[str, Any]] = []
    with_body: list[dict[str, Any]] = []
    for s in sorted(states, key=lambda s: s.pk or 0):
        row = {"b_pk": s.pk, "version": s.version, "last_updated": s.last_updated,
               "gone": s.gone, "session_id": s.session_id, "source_key": s.source_key,
               "content_hash": s.content_hash}
        if s.item is None:
            plain.append(row)
        else:
            with_body.append({**row, "body": s.item.body})
    for rows in (plain, with_body):
        driver.run(conn, _UPDATE, rows)


def _insert_rows(conn: Connection, states: list[_State]) -> None:
    """The batch's new resources in one statement; their keys are set on the states. Through
    the driver the keys are given (``driver.new_keys``) and no RETURNING is needed."""
    if not states:
        return
    rows = [
        {"res_type": s.res_type, "res_id": s.res_id, "version": s.version,
         "last_updated": s.last_updated, "gone": s.gone, "shared": s.shared,
         "session_id": s.session_id, "source_key": s.source_key,
         "content_hash": s.content_hash, "body": s.item.body if s.item else None}
        for s in states
    ]
    if driver.fast(conn):
        for s, row, key in zip(states, rows, driver.new_keys(conn, R.c.pk, len(rows)),
                               strict=True):
            s.pk = row["pk"] = key
        driver.run(conn, _INSERT_KEYED, rows)
        return
    pk_of = {(row.res_type, row.res_id): row.pk for row in conn.execute(_INSERT, rows)}
    for s in states:
        s.pk = pk_of[s.key]


def _insert_history(conn: Connection, versions: list[_Version], *,
                    stored_body: bool = False) -> None:
    """History rows: without a body when it is the row's final one (``stored_body``: the one
    stored before the batch), with their own body when a later version of the batch replaced
    it."""
    shared = [(v.state.pk, v.version, v.last_updated, v.gone) for v in versions
              if stored_body or v.item is v.state.item]
    own = [{"res_pk": v.state.pk, "version": v.version, "last_updated": v.last_updated,
            "gone": v.gone, "body": v.item.body} for v in versions
           if not stored_body and v.item is not v.state.item and v.item is not None]
    _insert_plain(conn, HV, _HISTORY_COLUMNS, shared)
    driver.run(conn, _INSERT_HISTORY, own)


def _keep_history_bodies(conn: Connection, pks: list[int]) -> None:
    """Copy the current body into the history rows that share it, before it is replaced."""
    current = select(R.c.body).where(R.c.pk == HV.c.res_pk).scalar_subquery()
    conn.execute(update(HV).where(HV.c.res_pk.in_(pks), HV.c.body.is_(None))
                 .values(body=current))


def _reindex(conn: Connection, items: list[tuple[int, ResourceWrite]],
             stale: list[int]) -> None:
    """Delete the index rows of the ``stale`` resources, then write those of ``items``."""
    if stale:
        for table in INDEX_TABLES:
            conn.execute(delete(table).where(table.c.res_pk.in_(stale)))
    key = ("res_pk", "res_type", "param")
    _insert_plain(conn, fhir_token, (*key, "system", "code"), [
        (pk, i.resource_type, *row) for pk, i in items for row in i.tokens])
    _insert_plain(conn, fhir_string, (*key, "norm", "exact"), [
        (pk, i.resource_type, *row) for pk, i in items for row in i.strings])
    _insert_plain(conn, fhir_date, (*key, "ordinal", "low", "high"), [
        row for pk, i in items for row in _date_rows(pk, i)])
    _insert_plain(conn, fhir_link, (*key, "target_type", "target_id"), [
        (pk, i.resource_type, *row) for pk, i in items for row in i.refs])


def _date_rows(pk: int, item: ResourceWrite) -> Iterable[tuple[Any, ...]]:
    """Date rows numbered per parameter (ordinal 0: the lowest value, the one ``_sort`` uses)."""
    seen: dict[str, int] = {}
    for param, low, high in item.dates:
        ordinal = seen[param] = seen.get(param, -1) + 1
        yield pk, item.resource_type, param, ordinal, low, high


@cache
def _insert(table: Any) -> Any:
    """The INSERT of ``table``, one statement object (``driver`` compiles it once)."""
    return insert(table)


def _insert_plain(conn: Connection, table: Any, columns: tuple[str, ...],
                  rows: list[tuple[Any, ...]]) -> None:
    """INSERT rows of plain values (text, numbers, booleans; no JSON), given in ``columns``
    order, with the driver's ``executemany`` (``driver.run_plain``: compiled once per dialect,
    no per-row SQLAlchemy processing; the bulk of a record version's rows)."""
    driver.run_plain(conn, _insert(table), columns, rows)


__all__ = ["bound_text", "write_many", "write_resources"]
