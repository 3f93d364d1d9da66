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

Statements are batched (one ``executemany`` per table); rows are locked in primary-key order.
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
_INSERT = insert(R).returning(R.c.pk, R.c.res_type, R.c.res_id, sort_by_parameter_order=True)
_UPDATE = update(R).where(R.c.pk == bindparam("b_pk"))
_HISTORY = insert(fhir_resource_version)


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
    stmt = (
        select(R.c.pk, R.c.res_type, R.c.res_id, R.c.version, R.c.gone, R.c.shared,
               R.c.content_hash, R.c.source_key)
        .where(or_(R.c.res_id.in_(ids), and_(R.c.session_id == session_id, ~R.c.shared)))
        .order_by(R.c.pk)
        .with_for_update()
    )
    return {(row.res_type, row.res_id): row for row in conn.execute(stmt)}


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
    result = conn.execute(_INSERT, rows)
    pks = [row.pk for row in result]
    conn.execute(_HISTORY, [{"res_pk": pk, "version": 1, "last_updated": now, "gone": False,
                             "body": i.body} for pk, i in zip(pks, items, strict=True)])
    return list(zip(pks, items, strict=True))


def _update_changed(
    conn: Connection, session_id: str, source_key: str,
    changed: list[tuple[Any, ResourceWrite]], now: str,
) -> None:
    if not changed:
        return
    conn.execute(_UPDATE, [
        {"b_pk": row.pk, "version": row.version + 1, "last_updated": now, "gone": False,
         "session_id": session_id, "source_key": source_key, "content_hash": item.content_hash,
         "body": item.body}
        for row, item in changed
    ])
    conn.execute(_HISTORY, [
        {"res_pk": row.pk, "version": row.version + 1, "last_updated": now, "gone": False,
         "body": item.body}
        for row, item in changed
    ])


def _mark_gone(conn: Connection, dropped: list[Any], now: str) -> None:
    """Retract resources a newer record version no longer emits (their last body is kept)."""
    if not dropped:
        return
    conn.execute(_UPDATE, [{"b_pk": row.pk, "version": row.version + 1, "last_updated": now,
                            "gone": True} for row in dropped])
    bodies = dict(conn.execute(select(R.c.pk, R.c.body).where(
        R.c.pk.in_([row.pk for row in dropped]))).all())
    conn.execute(_HISTORY, [{"res_pk": row.pk, "version": row.version + 1, "last_updated": now,
                             "gone": True, "body": bodies[row.pk]} for row in dropped])


def _reindex(conn: Connection, items: list[tuple[int, ResourceWrite]],
             stale: list[int]) -> None:
    """Delete the index rows of the ``stale`` resources, then write those of ``items``."""
    if stale:
        for table in INDEX_TABLES:
            conn.execute(delete(table).where(table.c.res_pk.in_(stale)))
    _insert_rows(conn, fhir_token, (
        {"res_pk": pk, "res_type": i.resource_type, "param": p, "system": s, "code": c}
        for pk, i in items for p, s, c in i.tokens))
    _insert_rows(conn, fhir_string, (
        {"res_pk": pk, "res_type": i.resource_type, "param": p, "norm": n, "exact": e}
        for pk, i in items for p, n, e in i.strings))
    _insert_rows(conn, fhir_date, (row for pk, i in items for row in _date_rows(pk, i)))
    _insert_rows(conn, fhir_link, (
        {"res_pk": pk, "res_type": i.resource_type, "param": p, "target_type": t,
         "target_id": t_id}
        for pk, i in items for p, t, t_id in i.refs))


def _date_rows(pk: int, item: ResourceWrite) -> Iterable[dict[str, Any]]:
    """Date rows numbered per parameter (ordinal 0: the lowest value, the one ``_sort`` uses)."""
    seen: dict[str, int] = {}
    for param, low, high in item.dates:
        ordinal = seen[param] = seen.get(param, -1) + 1
        yield {"res_pk": pk, "res_type": item.resource_type, "param": param,
               "ordinal": ordinal, "low": low, "high": high}


def _insert_rows(conn: Connection, table: Any, rows: Iterable[dict[str, Any]]) -> None:
    batch = list(rows)
    if batch:
        conn.execute(insert(table), batch)


__all__ = ["bound_text", "write_resources"]
