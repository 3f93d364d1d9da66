"""Run a prepared statement through the database driver, with SQLAlchemy's own bind processing.

``conn.execute(statement, rows)`` spends most of a small statement's CPU around the driver: the
cache key, the execution context, per-row parameter construction and the result's metadata,
about 0.1 ms a statement. The write path runs the same few INSERTs and UPDATEs for every record,
so :func:`run` compiles each once per dialect and set of parameter names, keeps the SQL text and
the bind processors SQLAlchemy itself would apply to each parameter (the UTC datetimes, JSON
bodies, booleans of ``schema``), and hands the driver ready values: the same SQL and the same
values reach the database (``tests/test_write_fast_paths.py`` compares the rows).

With :data:`FAST` (docs/performance.md#write-path) the statements skip SQLAlchemy's
execution (its context, result objects and the expansion of IN lists at each execution):

* on SQLite they go to the DBAPI connection itself (about 0.02 ms a statement); IN lists are
  given as :func:`in_list` parameters padded to a power of two, so that a few statement shapes
  serve every length;
* on PostgreSQL the INSERTs are one ``COPY … FROM STDIN`` per statement (an ``executemany``
  sends every row as a statement of its own: about 11 times a COPY's client CPU for 60 index
  rows), and an IN list is one array parameter (``= ANY``), so that the SQL text of a locking
  read never changes with its length;
* new rows' keys are given, not returned (:func:`new_keys`).

A driver error is raised as SQLAlchemy raises it (``IntegrityError``, ``OperationalError`` …).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Column, Connection, any_, bindparam, func, select
from sqlalchemy.exc import DBAPIError

#: Whether writes and locking reads take the driver's paths (tests compare both ways).
FAST = True

#: One parameter: its name and the processor SQLAlchemy applies to it (None: the value as is).
_Bind = tuple[str, Callable[[Any], Any] | None]
#: (dialect, statement, parameter names) -> (driver SQL, whether positional, binds in SQL order)
_COMPILED: dict[tuple[str, Any, tuple[str, ...]], tuple[str, bool, tuple[_Bind, ...]]] = {}


def _compiled(conn: Connection, statement: Any, keys: tuple[str, ...]
              ) -> tuple[str, bool, tuple[_Bind, ...]]:
    key = (conn.dialect.name, statement, keys)
    found = _COMPILED.get(key)
    if found is None:
        dialect = conn.dialect
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        found = _COMPILED[key] = (str(compiled), bool(compiled.positional),
                                  _binds(compiled, dialect))
    return found


def _binds(compiled: Any, dialect: Any) -> tuple[_Bind, ...]:
    """Each parameter of a compiled statement, in the order the driver takes them, with the
    processor SQLAlchemy applies to its value."""
    by_name = {name: bind for bind, name in compiled.bind_names.items()}  # rendered names
    names = list(compiled.positiontup or ()) if compiled.positional else list(by_name)
    return tuple((name, by_name[name].type.dialect_impl(dialect).bind_processor(dialect))
                 for name in names)


def _values(binds: tuple[_Bind, ...], positional: bool, row: dict[str, Any]) -> Any:
    if positional:
        return tuple(row[name] if proc is None else proc(row[name]) for name, proc in binds)
    return {name: row[name] if proc is None else proc(row[name]) for name, proc in binds}


def run(conn: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Execute ``statement`` (an INSERT or UPDATE without RETURNING) once per row, every row
    with the same parameter names, as ``conn.execute(statement, rows)`` would."""
    if not rows:
        return
    sql, positional, binds = _compiled(conn, statement, tuple(rows[0]))
    if _copies(conn, statement):
        _copy(conn, statement, tuple(name for name, _proc in binds),
              [_values(binds, True, row) for row in rows])
        return
    _many(conn, sql, [_values(binds, positional, row) for row in rows])


def run_plain(conn: Connection, statement: Any, columns: tuple[str, ...],
              rows: list[tuple[Any, ...]]) -> None:
    """Execute ``statement`` once per row of plain values (text, numbers, booleans: no bind
    processing is applied) given as tuples in ``columns`` order — the bulk of a record version's
    rows, passed to the driver as they are where its parameters are positional."""
    if not rows:
        return
    if _copies(conn, statement):
        _copy(conn, statement, columns, rows)
        return
    sql, positional, binds = _compiled(conn, statement, columns)
    if not positional:
        _many(conn, sql, [dict(zip(columns, row, strict=True)) for row in rows])
        return
    if tuple(name for name, _proc in binds) != columns:
        raise AssertionError(f"columns {columns} not in the statement's parameter order")
    _many(conn, sql, rows)


def _direct(conn: Connection, in_values: int = 0) -> bool:
    """Whether this connection's statements go to the DBAPI connection itself (SQLite), for a
    statement whose IN lists hold ``in_values`` values in all (at most :data:`MAX_IN`)."""
    return FAST and conn.dialect.name == "sqlite" and in_values <= MAX_IN


def fast(conn: Connection, in_values: int = 0) -> bool:
    """Whether a statement whose IN lists hold ``in_values`` values in all takes the driver's
    path (:func:`in_list`, :func:`new_keys`): on SQLite up to :data:`MAX_IN` values, on
    PostgreSQL (one array) any number."""
    return _direct(conn, in_values) or (FAST and _postgresql(conn))


def _postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _copies(conn: Connection, statement: Any) -> bool:
    """Whether ``statement`` runs as a COPY: a plain INSERT … VALUES on PostgreSQL."""
    return (FAST and _postgresql(conn) and statement.is_insert and statement.select is None
            and not statement._returning)


#: (table, columns) -> the COPY statement of those columns
_COPY_SQL: dict[tuple[str, tuple[str, ...]], str] = {}


def _copy(conn: Connection, statement: Any, columns: tuple[str, ...],
          rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows`` (values in ``columns`` order, bind processing applied) into the statement's
    table with one ``COPY … FROM STDIN`` (psycopg writes each value as its text form, which the
    column's type reads: the JSON text of a ``jsonb``, an aware datetime, a boolean)."""
    table = statement.table
    sql = _COPY_SQL.get((table.name, columns))
    if sql is None:
        quote = conn.dialect.identifier_preparer
        for name in columns:
            if name not in table.c:
                raise AssertionError(f"{name!r} is not a column of {table.name}")
        sql = _COPY_SQL[(table.name, columns)] = (
            f"COPY {quote.format_table(table)} ({', '.join(map(quote.quote, columns))}) "
            "FROM STDIN")
    with _as_sqlalchemy(conn, sql, rows[0]), _dbapi(conn).cursor() as cur, cur.copy(sql) as out:
        for row in rows:
            out.write_row(row)


def new_keys(conn: Connection, column: Column[Any], count: int) -> list[int]:
    """``count`` keys for new rows of ``column``'s table, ascending, that an INSERT gives
    explicitly (then no RETURNING is needed): on PostgreSQL the next values of the column's
    sequence; on SQLite the keys SQLite itself would give, from the greatest stored one (the
    write transaction holds SQLite's write lock; no table here uses AUTOINCREMENT)."""
    table = column.table
    if _postgresql(conn):
        rows = select_fixed(conn, ("keys", table.name), lambda: select(
            func.nextval(func.pg_get_serial_sequence(table.name, column.name)))
            .select_from(func.generate_series(1, bindparam("n"))), {"n": count})
        return sorted(key for (key,) in rows)
    ((greatest,),) = select_fixed(conn, ("greatest", table.name),
                                  lambda: select(func.max(column)), {})
    first = int(greatest or 0) + 1
    return list(range(first, first + count))


def _dbapi(conn: Connection) -> Any:
    """The DBAPI connection under ``conn`` (``sqlite3.Connection``, ``psycopg.Connection``)."""
    return conn.connection.driver_connection


@contextmanager
def _as_sqlalchemy(conn: Connection, sql: str, params: Any) -> Iterator[None]:
    """A driver error raised as ``conn.exec_driver_sql`` raises it (``IntegrityError`` …; a
    lost connection is invalidated, so that the pool does not hand it out again)."""
    error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except error as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        wrapped = DBAPIError.instance(sql, params, exc, error, dialect=conn.dialect,
                                      connection_invalidated=lost)
        if lost:
            conn.invalidate(exc)
        raise wrapped from exc


def _many(conn: Connection, sql: str, params: list[Any]) -> None:
    if not _direct(conn):
        conn.exec_driver_sql(sql, params)
        return
    with _as_sqlalchemy(conn, sql, params):
        _dbapi(conn).executemany(sql, params)


#: The most values a caller hands :func:`in_list` in one statement (its other path, SQLAlchemy's
#: expanding IN, takes any number up to the database's own limit; padded, these stay far below
#: SQLite's smallest default, 32,766 parameters).
MAX_IN = 4096


@dataclass(frozen=True)
class InList:
    """The values of an IN list as a driver statement takes them: on SQLite the parameters
    ``name_0``, ``name_1`` … padded to the next power of two (``size``) with the last value (an
    IN list matches the same rows), on PostgreSQL one array parameter ``name`` (``size`` 0).
    A statement's shape depends on ``size`` alone."""

    name: str
    size: int
    params: dict[str, Any]

    def clause(self, column: Any) -> Any:
        """``column IN (…)`` with this list's parameters."""
        if not self.size:
            return column == any_(bindparam(self.name, type_=ARRAY(column.type)))
        return column.in_([bindparam(f"{self.name}_{n}") for n in range(self.size)])


def in_list(conn: Connection, name: str, values: Sequence[Any]) -> InList:
    """``values`` (not empty) as an :class:`InList` for ``conn``'s database."""
    if not values:
        raise ValueError(f"an empty IN list {name!r}")
    if _postgresql(conn):
        return InList(name, 0, {name: list(values)})
    size = 1 << max(len(values) - 1, 0).bit_length()
    return InList(name, size,
                  {f"{name}_{n}": values[min(n, len(values) - 1)] for n in range(size)})


#: (dialect, shape key) -> (driver SQL, whether positional, binds in SQL order, constant values)
_Select = tuple[str, bool, tuple[_Bind, ...], dict[str, Any], frozenset[str]]
_SELECTS: dict[tuple[str, Any], _Select] = {}
#: Distinct query shapes kept compiled (a client can make many: the cache is emptied when full).
MAX_SELECTS = 1024


def _compiled_select(conn: Connection, key: Any, build: Callable[[], Any],
                     names: frozenset[str]) -> _Select | None:
    dialect = conn.dialect
    found = _SELECTS.get((dialect.name, key))
    if found is None:
        compiled = build().compile(dialect=dialect)
        sql = str(compiled)
        if "POSTCOMPILE" in sql or not names <= set(compiled.binds):
            return None  # a parameter rendered at execution time: not a fixed SQL text
        params = compiled.construct_params(_check=False)
        constants = {n: v for n, v in params.items() if n not in names}
        if len(_SELECTS) >= MAX_SELECTS:
            _SELECTS.clear()
        found = _SELECTS[(dialect.name, key)] = (sql, bool(compiled.positional),
                                                 _binds(compiled, dialect), constants, names)
    return found


def select_rows(conn: Connection, key: Any, build: Callable[[], Any],
                values: dict[str, Any]) -> list[Any] | None:
    """The rows of a SELECT whose SQL depends on ``key`` alone: ``build()`` makes the statement
    (its variable parts as ``bindparam`` named as in ``values``, every constant baked in) and is
    compiled once per dialect and key; later calls hand the driver the cached SQL with
    ``values`` and the constants, on a DBAPI cursor. The rows are the driver's own tuples (no
    result processing: for columns whose values the driver returns as SQLAlchemy would; read
    them by position). None when the statement has a parameter only rendered at execution time
    (the caller then executes it the usual way)."""
    found = _compiled_select(conn, key, build, frozenset(values))
    if found is None:
        return None
    sql, positional, binds, constants, names = found
    if names != values.keys():
        raise AssertionError(f"values {sorted(values)} are not the shape's {sorted(names)}")
    params = _values(binds, positional, {**constants, **values})
    cursor = conn.connection.cursor()  # the DBAPI cursor: no execution context, no Row objects
    try:
        with _as_sqlalchemy(conn, sql, params):
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    finally:
        cursor.close()


def select_fixed(conn: Connection, key: Any, build: Callable[[], Any],
                 values: dict[str, Any]) -> list[Any]:
    """:func:`select_rows` of a statement whose parameters are all plain bind parameters (no
    expanding IN: :func:`in_list` lists), so its SQL text is always fixed."""
    rows = select_rows(conn, key, build, values)
    if rows is None:
        raise AssertionError(f"statement {key!r} has a parameter rendered at execution time")
    return rows


__all__ = ["FAST", "MAX_IN", "MAX_SELECTS", "InList", "fast", "in_list", "new_keys",
           "run", "run_plain", "select_fixed", "select_rows"]
