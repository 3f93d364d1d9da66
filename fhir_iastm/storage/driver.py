"""Run a prepared statement through the database driver, with SQLAlchemy's own bind processing.

``conn.execute(statement, rows)`` spends most of a small statement's CPU around the driver: the
cache key, the execution context, per-row parameter construction and the result's metadata,
about 0.1 ms a statement. The write path runs the same few INSERTs and UPDATEs for every record,
so :func:`run` compiles each once per dialect and set of parameter names, keeps the SQL text and
the bind processors SQLAlchemy itself would apply to each parameter (the UTC datetimes, JSON
bodies, booleans of ``schema``), and hands the driver ready values: the same SQL and the same
values reach the database (``tests/test_write_fast_paths.py`` compares the rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

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
    conn.exec_driver_sql(sql, [_values(binds, positional, row) for row in rows])


def run_plain(conn: Connection, statement: Any, columns: tuple[str, ...],
              rows: list[tuple[Any, ...]]) -> None:
    """Execute ``statement`` once per row of plain values (text, numbers, booleans: no bind
    processing is applied) given as tuples in ``columns`` order — the bulk of a record version's
    rows, passed to the driver as they are where its parameters are positional."""
    if not rows:
        return
    sql, positional, binds = _compiled(conn, statement, columns)
    if not positional:
        conn.exec_driver_sql(sql, [dict(zip(columns, row, strict=True)) for row in rows])
        return
    if tuple(name for name, _proc in binds) != columns:
        raise AssertionError(f"columns {columns} not in the statement's parameter order")
    conn.exec_driver_sql(sql, rows)


def run_one(conn: Connection, statement: Any, row: dict[str, Any]) -> Any:
    """Execute ``statement`` for one row and return the first column of its first result row
    (an INSERT … RETURNING)."""
    sql, positional, binds = _compiled(conn, statement, tuple(row))
    return conn.exec_driver_sql(sql, _values(binds, positional, row)).scalar()


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


__all__ = ["MAX_SELECTS", "run", "run_one", "run_plain", "select_rows"]
