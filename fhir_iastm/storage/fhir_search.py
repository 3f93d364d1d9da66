"""FHIR reads and searches as SQL over the resource and index tables.

A ``SearchQuery`` (parsed by the facade) becomes one SELECT on ``fhir_resource``: each condition is
``pk IN (SELECT res_pk FROM <index table> WHERE …)`` (``NOT IN`` for ``:not`` and
``:missing=true``), ordered by the sort key then ``pk`` and cut by a keyset position, so a page
costs the same on page 1 and page 10,000 and no entry repeats or is skipped when rows are added.
Date semantics follow R4 search.html#prefix with both sides as inclusive UTC ranges.

Each statement is built from the query's shape (``search_shape``: its values as named
parameters), compiled once per shape and run through the driver; on SQLite bodies are read as
their text (docs/performance.md#search-path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Select,
    Text,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    true,
    type_coerce,
)

from fhir_iastm.storage.driver import select_rows
from fhir_iastm.storage.fhir_types import (
    Chain,
    Condition,
    DateMatch,
    Match,
    RefMatch,
    SearchQuery,
    SearchResult,
    StoredResource,
    StringMatch,
    TokenMatch,
)
from fhir_iastm.storage.schema import (
    fhir_date,
    fhir_link,
    fhir_resource,
    fhir_resource_version,
    fhir_string,
    fhir_token,
)
from fhir_iastm.storage.search_shape import bound, slots, string_value, template

R = fhir_resource
HV = fhir_resource_version
L = fhir_link
_TABLES = {"token": fhir_token, "string": fhir_string, "date": fhir_date, "reference": fhir_link}
#: Sort value of a resource without the sorted date: last in either direction.
_NO_DATE = {False: "9999-12-31T23:59:59.999999~", True: "0000"}


def _columns(table: FromClause) -> list[Any]:
    c = table.c
    return [c.pk, c.res_type, c.res_id, c.version, c.last_updated, c.gone, c.body]


def _resource(row: Any) -> StoredResource:
    """A row of :func:`_columns`, read by position (a ``Row`` or the driver's tuple)."""
    return StoredResource(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])


def _raw_bodies(conn: Connection) -> bool:
    """Whether this database returns a JSON column's text as it was written: SQLite keeps the
    text :func:`compact_json` wrote; PostgreSQL's JSONB answers its own normal form."""
    return conn.dialect.name == "sqlite"


def _search_columns(table: FromClause, raw: bool) -> list[Any]:
    """:func:`_columns`; when ``raw`` the body as its stored text, and the JSON array of its
    ``resourceType``, ``id``, ``subject`` and ``patient`` (``StoredResource.head``)."""
    columns = _columns(table)
    if raw:
        columns[-1] = type_coerce(table.c.body, Text).label("body")
        columns.append(type_coerce(func.json_extract(table.c.body, *_HEAD), Text).label("head"))
    return columns


#: The JSON paths of ``StoredResource.head``.
_HEAD = ("$.resourceType", "$.id", "$.subject", "$.patient")


def _search_resource(row: Any, raw: bool) -> StoredResource:
    """:func:`_resource`; with ``raw`` the body left as its text (decoded when first used), the
    row read by position (the columns of :func:`_search_columns`)."""
    if not raw:
        return _resource(row)
    return StoredResource(row[0], row[1], row[2], row[3], row[4], bool(row[5]), None, row[6],
                          row[7])


def _history_columns() -> list[Any]:
    """A version's columns; its body is the current row's while the history row's is NULL."""
    body = func.coalesce(HV.c.body, R.c.body, type_=R.c.body.type).label("body")
    return [R.c.pk, R.c.res_type, R.c.res_id, HV.c.version, HV.c.last_updated, HV.c.gone, body]


def read_resource(conn: Connection, rtype: str, rid: str,
                  version: int | None = None) -> StoredResource | None:
    """The current row (or one version from the history) of a resource; None when unknown."""
    if version is None:
        row = conn.execute(select(*_columns(R)).where(R.c.res_type == rtype,
                                                      R.c.res_id == rid)).first()
        return None if row is None else _resource(row)
    row = conn.execute(
        select(*_history_columns())
        .join(HV, HV.c.res_pk == R.c.pk)
        .where(R.c.res_type == rtype, R.c.res_id == rid, HV.c.version == version)
    ).first()
    return None if row is None else _resource(row)


def resource_history(conn: Connection, rtype: str, rid: str, limit: int,
                     before: int | None = None) -> list[StoredResource]:
    """Versions of a resource, newest first (``before``: only versions below it)."""
    stmt = (
        select(*_history_columns())
        .join(HV, HV.c.res_pk == R.c.pk)
        .where(R.c.res_type == rtype, R.c.res_id == rid)
        .order_by(HV.c.version.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(HV.c.version < before)
    return [_resource(row) for row in conn.execute(stmt)]


# --- predicates ----------------------------------------------------------------------------------

def date_condition(low: Any, high: Any, m: DateMatch) -> ColumnElement[bool]:
    """R4 prefixes on a stored range [low, high] against the value's range [m.low, m.high]."""
    m_low, m_high = bound(m.low), bound(m.high)
    return {
        "eq": and_(low >= m_low, high <= m_high),
        "ne": or_(low < m_low, high > m_high),
        "gt": high > m_high,
        "lt": low < m_low,
        "ge": high >= m_low,
        "le": low <= m_high,
        "sa": low > m_high,
        "eb": high < m_low,
    }[m.prefix]


def _match(table: Any, rtype: str, m: Match) -> ColumnElement[bool]:
    c = table.c
    if isinstance(m, TokenMatch):
        parts = []
        if m.code is not None:
            parts.append(c.code == bound(m.code))
        if m.system is not None:
            parts.append(c.system == bound(m.system))
        return and_(true(), *parts)
    if isinstance(m, StringMatch):
        if m.mode == "exact":
            return c.exact == bound(m.text)  # type: ignore[no-any-return]
        return c.norm.like(bound(string_value(m)), escape="\\")  # type: ignore[no-any-return]
    if isinstance(m, DateMatch):
        return date_condition(c.low, c.high, m)
    if isinstance(m, RefMatch):
        wanted = c.target_id == bound(m.target_id)
        if m.target_type is None:
            return wanted
        return and_(wanted, c.target_type == bound(m.target_type))
    if isinstance(m, Chain):
        target = R.alias()
        inner = select(target.c.res_id).where(
            target.c.res_type == m.target_type, ~target.c.gone,
            condition(target, m.target_type, m.condition))
        return and_(c.target_type == m.target_type, c.target_id.in_(inner))
    raise TypeError(f"unknown match {m!r}")  # pragma: no cover


def condition(res: Any, rtype: str, cond: Condition) -> ColumnElement[bool]:
    """The predicate of one search condition on the resource table ``res``."""
    if cond.kind in ("id", "lastUpdated"):
        if cond.missing is not None:  # every resource has both
            return false() if cond.missing else true()
        if cond.kind == "id":
            found = res.c.res_id.in_([bound(m.code) for m in cond.matches  # type: ignore[union-attr]
                                      ])
        else:
            found = or_(*(date_condition(res.c.last_updated, res.c.last_updated, m)
                          for m in cond.matches if isinstance(m, DateMatch)))
        return ~found if cond.negate else found
    table = _TABLES[cond.kind]
    rows = select(table.c.res_pk).where(table.c.res_type == rtype, table.c.param == cond.param)
    if cond.missing is not None:
        present = res.c.pk.in_(rows)
        return ~present if cond.missing else present
    found = res.c.pk.in_(rows.where(or_(*(_match(table, rtype, m) for m in cond.matches))))
    return ~found if cond.negate else found


# --- search --------------------------------------------------------------------------------------

def _narrows_type(cond: Condition) -> bool:
    """Whether the condition alone keeps only resources of the searched type: a positive
    condition on an index table, whose rows carry their resource's type."""
    return (cond.kind not in ("id", "lastUpdated") and not cond.negate
            and cond.missing is not True)


def _filtered(q: SearchQuery, columns: list[Any]) -> Select[Any]:
    stmt = select(*columns).where(~R.c.gone)
    # The type test is left out when an index condition already implies it: SQLite, given
    # both, walks every resource of the type (its index) and tests each against the IN list
    # (18 ms for a patient's Procedures at 30,000 sessions) instead of reading the few rows
    # the index search found by primary key (0.2 ms), so reads stay flat as the store grows.
    if not any(_narrows_type(cond) for cond in q.conditions):
        stmt = stmt.where(R.c.res_type == q.resource_type)
    for cond in q.conditions:
        stmt = stmt.where(condition(R, q.resource_type, cond))
    return stmt


def _sort_column(q: SearchQuery) -> tuple[Any, Any]:
    """(sort value expression or None, the join it needs or None)."""
    sort = q.sort
    if sort is None:
        return None, None
    if sort.key == "_lastUpdated":
        return R.c.last_updated, None
    if sort.key == "_id":
        return R.c.res_id, None
    d = fhir_date.alias("sort_date")
    on = and_(d.c.res_pk == R.c.pk, d.c.param == sort.key, d.c.ordinal == 0)
    return func.coalesce(d.c.low, literal(_NO_DATE[sort.descending])), (d, on)


def _page(q: SearchQuery, raw: bool) -> Select[Any]:
    """The SELECT of one page (and one row more, to know whether another page follows)."""
    value, join = _sort_column(q)
    desc = q.sort is not None and q.sort.descending
    columns = _search_columns(R, raw) + [
        (value if value is not None else literal(None)).label("sort_value")]
    stmt = _filtered(q, columns)
    if join is not None:
        stmt = stmt.select_from(R.outerjoin(*join))
    if q.after is not None:
        stmt = stmt.where(_after(value, q.after, desc))
    order = [value] if value is not None else []
    stmt = stmt.order_by(*[(o.desc() if desc else o.asc()) for o in [*order, R.c.pk]])
    return stmt.limit(q.count + 1)


class _Runner:
    """Runs a search's statements: with ``fast`` each shape's SQL compiled once and run
    through the driver with the query's values (``search_shape``); otherwise, or when a
    shape's SQL is not fixed, the statement built from the query itself."""

    def __init__(self, conn: Connection, fast: bool) -> None:
        self.conn = conn
        self.fast = fast

    def rows(self, key: Any, build: Callable[[Any], Select[Any]], shape: Any, actual: Any,
             values: dict[str, Any]) -> list[Any]:
        """The rows of ``build(actual)``; ``build(shape)`` is the same statement with the
        values as bind parameters named in ``values``."""
        if self.fast:
            rows = select_rows(self.conn, key, lambda: build(shape), values)
            if rows is not None:
                return rows
        return list(self.conn.execute(build(actual)).all())


#: Whether searches run through the driver by shape (tests compare both ways).
FAST = True


def search(conn: Connection, q: SearchQuery) -> SearchResult:
    """One page of a search, its includes, and the total when asked."""
    raw = _raw_bodies(conn)
    run = _Runner(conn, FAST)
    shape, values = template(q) if run.fast else (q, {})
    if q.count == 0:
        return SearchResult([], [], _total(run, shape, q, values) if q.total else None, None)
    rows = run.rows(("page", shape), lambda s: _page(s, raw), shape, q, values)
    more = len(rows) > q.count
    rows = rows[: q.count]
    total = None
    if q.total:
        # a whole first page is every match: its length is the count (no sort join can repeat
        # a row), read in the same transaction
        whole = q.after is None and not more and _sort_column(q)[1] is None
        total = len(rows) if whole else _total(run, shape, q, values)
    matches = [_search_resource(r, raw) for r in rows]
    next_after = (rows[-1][-1], rows[-1][0]) if more else None  # (sort_value, pk)
    included, truncated = _included(run, q, matches, raw)
    return SearchResult(matches, included, total, next_after, truncated)


def _total(run: _Runner, shape: SearchQuery, q: SearchQuery, values: dict[str, Any]) -> int:
    """How many resources match (every page)."""
    where = {k: v for k, v in values.items() if not k.startswith("after")}
    key = ("count", shape.resource_type, shape.conditions)
    rows = run.rows(key, lambda s: _filtered(s, [func.count()]), shape, q, where)
    return int(rows[0][0])


def _after(value: Any, after: tuple[str | None, int], desc: bool) -> ColumnElement[bool]:
    key, pk = bound(after[0]), bound(after[1])
    if value is None:
        return R.c.pk < pk if desc else R.c.pk > pk  # type: ignore[no-any-return]
    if desc:
        return or_(value < key, and_(value == key, R.c.pk < pk))
    return or_(value > key, and_(value == key, R.c.pk > pk))


def _including(q: SearchQuery, pks: list[Any], ids: list[Any], raw: bool) -> Select[Any]:
    """The SELECT of a page's ``_include`` targets and ``_revinclude`` sources (``pks``,
    ``ids``: the page's row keys and logical ids)."""
    pks, ids = [bound(p) for p in pks], [bound(i) for i in ids]
    wanted = []
    for inc in q.includes:
        target = R.alias()
        on_link = and_(target.c.res_type == L.c.target_type, target.c.res_id == L.c.target_id)
        sub = select(target.c.pk).join(L, on_link).where(L.c.res_pk.in_(pks),
                                                         L.c.param == inc.param)
        if inc.target_type is not None:
            sub = sub.where(L.c.target_type == inc.target_type)
        wanted.append(R.c.pk.in_(sub))
    for inc in q.revincludes:
        sub = select(L.c.res_pk).where(L.c.res_type == inc.source_type, L.c.param == inc.param,
                                       L.c.target_type == q.resource_type,
                                       L.c.target_id.in_(ids))
        wanted.append(R.c.pk.in_(sub))
    return (select(*_search_columns(R, raw)).where(or_(*wanted), ~R.c.gone, R.c.pk.not_in(pks))
            .order_by(R.c.pk).limit(q.max_included + 1))


def _included(run: _Runner, q: SearchQuery, matches: list[StoredResource],
              raw: bool) -> tuple[list[StoredResource], bool]:
    """``_include`` targets and ``_revinclude`` sources of a page (at most ``max_included``)."""
    if not matches or not (q.includes or q.revincludes):
        return [], False
    pks = [m.pk for m in matches]
    ids = [m.resource_id for m in matches] if q.revincludes else []
    values: dict[str, Any] = {}
    shape = (slots(pks, "pk", values), slots(ids, "id", values))
    key = ("include", q.resource_type, q.includes, q.revincludes, q.max_included, len(pks),
           len(ids))
    rows = run.rows(key, lambda a: _including(q, a[0], a[1], raw), shape, (pks, ids), values)
    included = [_search_resource(r, raw) for r in rows[: q.max_included]]
    return included, len(rows) > q.max_included


__all__ = ["condition", "date_condition", "read_resource", "resource_history", "search"]
