"""Build the SQLAlchemy engine for SQLite or PostgreSQL and run the migrations.

SQLite is a single-writer database: every write transaction starts with ``BEGIN IMMEDIATE``, so
two writers (threads or processes) serialize on the database lock instead of failing with
"database is locked" half-way through a read-modify-write. Reads use a deferred ``BEGIN``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from fhir_iastm.storage.fhir_types import compact_json

#: Execution option that makes a SQLite transaction start with a plain (deferred) BEGIN.
READ_ONLY = {"sqlite_begin": "DEFERRED"}


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` mean psycopg 3 here (psycopg2 is not a dependency)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the SQLite transaction discipline above, or a pooled PG engine."""
    url = normalize_url(url)
    parsed = make_url(url)
    kwargs.setdefault("json_serializer", compact_json)
    if parsed.get_backend_name() != "sqlite":
        # No pool_pre_ping: it costs a round trip per transaction; recycle idle connections instead.
        kwargs.setdefault("pool_recycle", 300)
        return create_engine(url, **kwargs)
    connect_args = {"timeout": 60, "check_same_thread": False}
    if is_memory(parsed):
        kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def is_memory(url: URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database (one per process, gone with it)."""
    return url.get_backend_name() == "sqlite" and memory_database(url.database)


def memory_database(database: str | None) -> bool:
    """Whether a SQLite database name is in memory: none, ``:memory:`` or a ``file::memory:``
    URI (``?uri=true``)."""
    return not database or database == ":memory:" or database.startswith("file::memory:")


#: How long a SQLite connection waits for a lock before "database is locked".
BUSY_TIMEOUT_MS = 60_000


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite driver's own is deferred).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in (
        "foreign_keys=ON",
        "journal_mode=WAL",
        "synchronous=NORMAL",
        f"busy_timeout={BUSY_TIMEOUT_MS}",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    if mode == "DEFERRED":  # a read: takes no lock, so nothing to wait for; straight to the driver
        try:
            conn.connection.driver_connection.execute("BEGIN DEFERRED")
            return
        except conn.dialect.loaded_dbapi.Error:  # raised as SQLAlchemy raises it, below
            pass
    conn.exec_driver_sql(f"BEGIN {mode}")


def alembic_config() -> Config:
    """Alembic configuration pointing at the packaged ``fhir_iastm/storage/migrations``."""
    cfg = Config()
    location = resources.files("fhir_iastm.storage") / "migrations"
    cfg.set_main_option("script_location", str(location))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """``alembic upgrade <revision>`` on ``engine`` (PostgreSQL: serialized by an advisory lock)."""
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect().execution_options(**READ_ONLY) as conn:
        return MigrationContext.configure(conn).get_current_revision()




#: Every failure of the database (unreachable, locked, schema, constraint) the store can raise.
DatabaseError = SQLAlchemyError


class MissingDatabaseError(Exception):
    """A SQLite database file that is not there where one must exist (a mistyped path must not
    look like an empty store)."""


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite ``url`` whose file does not exist (``memory`` for an in-memory
    database); None when the file exists or the database is not SQLite."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    if is_memory(parsed):
        return "memory"
    path = parsed.database or ""
    return None if Path(path).is_file() else path


def database_reason(exc: Exception) -> str:
    """The driver's own first line for connection-level errors (no SQL, no parameters, which
    can carry record data); the error type alone for the others."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, (OperationalError, InterfaceError)) and orig is not None:
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
        return f"{type(orig).__name__}: {first[:200]}"
    return type(exc).__name__


def database_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the database is busy or out of reach for now, so that the
    same request may succeed when retried: a write lock waited for past its timeout (SQLite's
    "database is locked", PostgreSQL's lock timeout, docs/performance.md#write-lock), a lost or
    refused connection. Not a constraint, a missing table or a bad statement."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    if exc.connection_invalidated:
        return True
    orig = getattr(exc, "orig", None)
    if orig is None or type(orig).__module__.startswith("sqlite3"):
        text = str(orig if orig is not None else exc)
        return "database is locked" in text or "database table is locked" in text
    return True  # psycopg's OperationalError: connection, lock timeout, cancel, resources


__all__ = [
    "DatabaseError",
    "MissingDatabaseError",
    "READ_ONLY",
    "alembic_config",
    "compact_json",
    "current_revision",
    "is_memory",
    "make_engine",
    "memory_database",
    "migrate",
    "normalize_url",
    "database_reason",
    "database_unavailable",
    "missing_sqlite_file",
]
