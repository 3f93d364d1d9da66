"""Run a prepared statement through the database driver, with SQLAlchemy's own bind processing.

``conn.execute(statement, rows)`` spends most of a small statement's CPU around the driver: the
cache key, the execution context, per-row parameter construction and the result's metadata,
about 0.1 ms a statement. The write path runs the same few INSERTs and UPDATEs for every record,
so :func:`run` compiles each once per dialect and set of parameter names, keeps the SQL text and
the bind processors SQLAlchemy itself would apply to each parameter (the UTC datetimes, JSON
bodies, booleans of ``schema``), and hands the driver ready values: the same SQL and the same
values reach the database (``tests/test_write_fast_paths.py`` compares the rows).

On SQLite (:data:`FAST`) the statements go to the DBAPI connection itself, without
SQLAlchemy's execution context (about 0.02 ms a statement, and for the few statements that read
back — the locking reads and the new rows' keys — the result machinery and the expansion of IN
lists at each execution); a driver error is raised as SQLAlchemy raises it (``IntegrityError``,
``OperationalError`` …). IN lists are given as :func:`in_list` parameters padded to a power of
two, so that a few statement shapes serve every length (docs/performance.md#write-path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, bindparam
from sqlalchemy.exc import DBAPIError

#: Whether SQLite writes and locking reads go to the DBAPI connection (tests compare both ways).
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
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    return tuple((name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
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
    _many(conn, sql, [_values(binds, positional, row) for row in rows])


def run_plain(conn: Connection, statement: Any, columns: tuple[str, ...],
              rows: list[tuple[Any, ...]]) -> None:
    """Execute ``statement`` once per row of plain values (text, numbers, booleans: no bind
    processing is applied) given as tuples in ``columns`` order — the bulk of a record version's
    rows, passed to the driver as they are where its parameters are positional."""
    if not rows:
        return
    sql, positional, binds = _compiled(conn, statement, columns)
    if not positional:
        _many(conn, sql, [dict(zip(columns, row, strict=True)) for row in rows])
        return
    if tuple(name for name, _proc in binds) != columns:
        raise AssertionError(f"columns {columns} not in the statement's parameter order")
    _many(conn, sql, rows)


def run_one(conn: Connection, statement: Any, row: dict[str, Any]) -> Any:
    """Execute ``statement`` for one row and return the first column of its first result row
    (an INSERT … RETURNING)."""
    sql, positional, binds = _compiled(conn, statement, tuple(row))
    params = _values(binds, positional, row)
    if not direct(conn):
        return conn.exec_driver_sql(sql, params).scalar()
    with _as_sqlalchemy(conn, sql, params):
        rows = _dbapi(conn).execute(sql, params).fetchall()
    return rows[0][0] if rows else None


def direct(conn: Connection, in_values: int = 0) -> bool:
    """Whether this connection's statements go to the DBAPI connection itself (SQLite), for a
    statement whose IN lists hold ``in_values`` values in all (at most :data:`MAX_IN`)."""
    return FAST and conn.dialect.name == "sqlite" and in_values <= MAX_IN


def _dbapi(conn: Connection) -> Any:
    """The DBAPI connection under ``conn`` (``sqlite3.Connection``)."""
    return conn.connection.driver_connection


@contextmanager
def _as_sqlalchemy(conn: Connection, sql: str, params: Any) -> Iterator[None]:
    """A driver error raised as ``conn.exec_driver_sql`` raises it (``IntegrityError`` …)."""
    error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except error as exc:
        raise DBAPIError.instance(sql, params, exc, error, dialect=conn.dialect) from exc


def _many(conn: Connection, sql: str, params: list[Any]) -> None:
    if not direct(conn):
        conn.exec_driver_sql(sql, params)
        return
    with _as_sqlalchemy(conn, sql, params):
        _dbapi(conn).executemany(sql, params)


#: The most values a caller hands :func:`in_list` in one statement (its other path, SQLAlchemy's
#: expanding IN, takes any number up to the database's own limit; padded, these stay far below
#: SQLite's smallest default, 32,766 parameters).
MAX_IN = 4096


def in_list(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """``values`` as the parameters ``name_0``, ``name_1`` … of an :func:`in_params` list,
    padded to the next power of two with the last value (an IN list matches the same rows).
    ``values`` is not empty."""
    if not values:
        raise ValueError(f"an empty IN list {name!r}")
    size = 1 << max(len(values) - 1, 0).bit_length()
    return {f"{name}_{n}": values[min(n, len(values) - 1)] for n in range(size)}


def in_params(name: str, size: int) -> list[Any]:
    """The bind parameters of an IN list of ``size`` values named as :func:`in_list` names
    them."""
    return [bindparam(f"{name}_{n}") for n in range(size)]


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
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    except conn.dialect.loaded_dbapi.Error:  # raised as SQLAlchemy raises it, on the usual path
        return list(conn.exec_driver_sql(sql, params).all())
    finally:
        cursor.close()


def select_fixed(conn: Connection, key: Any, build: Callable[[], Any],
                 values: dict[str, Any]) -> list[Any]:
    """:func:`select_rows` of a statement whose parameters are all plain bind parameters (no
    expanding IN: :func:`in_params` lists), so its SQL text is always fixed."""
    rows = select_rows(conn, key, build, values)
    if rows is None:
        raise AssertionError(f"statement {key!r} has a parameter rendered at execution time")
    return rows


__all__ = ["FAST", "MAX_IN", "MAX_SELECTS", "direct", "in_list", "in_params", "run", "run_one",
           "run_plain", "select_fixed", "select_rows"]
