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

Statements are batched (one multi-row INSERT or ``executemany`` per table, about a dozen per
record version whatever its size); rows are locked in primary-key order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, insert, or_, select, update

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
_UPDATE = update(R).where(R.c.pk == bindparam("b_pk"))
_CURRENT = (
    select(R.c.pk, R.c.res_type, R.c.res_id, R.c.version, R.c.gone, R.c.shared,
           R.c.content_hash, R.c.source_key)
    .where(or_(R.c.res_id.in_(bindparam("ids", expanding=True)),
               and_(R.c.session_id == bindparam("sid"), ~R.c.shared)))
    .order_by(R.c.pk)
    .with_for_update()
)
#: History rows are written without a body (NULL: the resource row's, see the docstring).
_HISTORY_COLUMNS = ("res_pk", "version", "last_updated", "gone")
#: (dialect, table, columns) -> (driver SQL, whether its parameters are positional)
_DRIVER_SQL: dict[tuple[str, str, tuple[str, ...]], tuple[str, bool]] = {}


def bound_text(value: datetime) -> str:
    """An aware datetime as stored bound text (UTC, microseconds, fixed width)."""
    v = value.astimezone(UTC)
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:"
            f"{v.second:02d}.{v.microsecond:06d}")


def write_resources(conn: Connection, session_id: str, rset: ResourceSet, now: str) -> None:
    """Store the resources of one record version of ``session_id`` (see the module docstring)."""
    current = _lock_current(conn, session_id, rset)
    new: list[ResourceWrite] = []
    changed: list[tuple[Any, ResourceWrite]] = []
    source_only: list[dict[str, Any]] = []
    for item in rset.resources:
        row = current.pop((item.resource_type, item.resource_id), None)
        if row is None:
            new.append(item)
        elif item.shared and rset.source_key < row.source_key:
            continue  # a newer record carries this shared resource
        elif row.gone or row.content_hash != item.content_hash:
            changed.append((row, item))
        elif item.shared and row.source_key != rset.source_key:
            source_only.append({"b_pk": row.pk, "source_key": rset.source_key,
                                "session_id": session_id})
    dropped = [row for row in current.values() if not row.shared and not row.gone]
    pks = _insert_new(conn, session_id, rset.source_key, new, now)
    _update_changed(conn, session_id, rset.source_key, changed, now)
    _mark_gone(conn, dropped, now)
    if source_only:
        conn.execute(_UPDATE, source_only)
    stale = [row.pk for row, _ in changed] + [row.pk for row in dropped]
    _reindex(conn, [(row.pk, item) for row, item in changed] + pks, stale)


def _lock_current(
    conn: Connection, session_id: str, rset: ResourceSet
) -> dict[tuple[str, str], Any]:
    """The rows of the resources written, and this session's own rows (to find dropped ones)."""
    ids = [item.resource_id for item in rset.resources]
    rows = conn.execute(_CURRENT, {"ids": ids, "sid": session_id})
    return {(row.res_type, row.res_id): row for row in rows}


def _insert_new(
    conn: Connection, session_id: str, source_key: str, items: list[ResourceWrite], now: str
) -> list[tuple[int, ResourceWrite]]:
    if not items:
        return []
    rows = [
        {"res_type": i.resource_type, "res_id": i.resource_id, "version": 1,
         "last_updated": now, "gone": False, "shared": i.shared, "session_id": session_id,
         "source_key": source_key, "content_hash": i.content_hash, "body": i.body}
        for i in items
    ]
    pk_of = {(row.res_type, row.res_id): row.pk for row in conn.execute(_INSERT, rows)}
    pks = [(pk_of[(i.resource_type, i.resource_id)], i) for i in items]
    _insert_plain(conn, HV, _HISTORY_COLUMNS, [(pk, 1, now, False) for pk, _ in pks])
    return pks


def _update_changed(
    conn: Connection, session_id: str, source_key: str,
    changed: list[tuple[Any, ResourceWrite]], now: str,
) -> None:
    if not changed:
        return
    _keep_history_bodies(conn, [row.pk for row, _ in changed])
    conn.execute(_UPDATE, [
        {"b_pk": row.pk, "version": row.version + 1, "last_updated": now, "gone": False,
         "session_id": session_id, "source_key": source_key, "content_hash": item.content_hash,
         "body": item.body}
        for row, item in changed
    ])
    _insert_plain(conn, HV, _HISTORY_COLUMNS,
                  [(row.pk, row.version + 1, now, False) for row, _ in changed])


def _keep_history_bodies(conn: Connection, pks: list[int]) -> None:
    """Copy the current body into the history rows that share it, before it is replaced."""
    current = select(R.c.body).where(R.c.pk == HV.c.res_pk).scalar_subquery()
    conn.execute(update(HV).where(HV.c.res_pk.in_(pks), HV.c.body.is_(None))
                 .values(body=current))


def _mark_gone(conn: Connection, dropped: list[Any], now: str) -> None:
    """Retract resources a newer record version no longer emits (their last body is kept, so
    the gone version's history row shares it)."""
    if not dropped:
        return
    conn.execute(_UPDATE, [{"b_pk": row.pk, "version": row.version + 1, "last_updated": now,
                            "gone": True} for row in dropped])
    _insert_plain(conn, HV, _HISTORY_COLUMNS,
                  [(row.pk, row.version + 1, now, True) for row in dropped])


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


def _insert_plain(conn: Connection, table: Any, columns: tuple[str, ...],
                  rows: list[tuple[Any, ...]]) -> None:
    """INSERT rows of plain values (text, numbers, booleans; no JSON), given in ``columns``
    order, with the driver's ``executemany``: the statement is compiled once per dialect and
    no per-row SQLAlchemy processing runs (the bulk of a record version's rows)."""
    if not rows:
        return
    key = (conn.dialect.name, table.name, columns)
    if key not in _DRIVER_SQL:
        compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(columns))
        positional = bool(compiled.positional)
        if positional and tuple(compiled.positiontup or ()) != columns:
            raise AssertionError(f"{table.name}: columns {columns} not in table order")
        _DRIVER_SQL[key] = (str(compiled), positional)
    sql, positional = _DRIVER_SQL[key]
    named = [dict(zip(columns, row, strict=True)) for row in rows] if not positional else rows
    conn.exec_driver_sql(sql, named)


__all__ = ["bound_text", "write_resources"]
