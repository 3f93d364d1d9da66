"""Edge (storage): build the SQLAlchemy engine for SQLite or PostgreSQL and run the migrations.

Layer: edge; imports SQLAlchemy and Alembic.

SQLite is a single-writer database: every write transaction starts with ``BEGIN IMMEDIATE``, so
two writers (threads or processes) serialize on the database lock instead of failing with
"database is locked" half-way through a read-modify-write. Reads use a deferred ``BEGIN``.

A writer that finds the database lock taken would wait in SQLite's busy handler, which polls with
sleeps of 1, 2, 5, 10, 15, 20, 25 … ms: two gunicorn workers posting at 200 requests/s then spend
most of their time asleep while the lock is free. So a file database's writers first queue on an
``flock`` of ``<database>-wlock`` (one open file per connection, so threads and processes queue
alike), taken just before ``BEGIN IMMEDIATE`` and released right after ``COMMIT`` / ``ROLLBACK``: a
waiter wakes the moment the lock is free. SQLite's own locking still decides correctness; the busy
timeout remains for writers that do not take the flock (another tool, a nested write).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from importlib import resources
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's busy timeout alone
    fcntl = None  # type: ignore[assignment]

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

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
    if parsed.get_backend_name() != "sqlite":
        # No pool_pre_ping: it costs a round trip per transaction; recycle idle connections instead.
        kwargs.setdefault("pool_recycle", 300)
        return create_engine(url, **kwargs)
    connect_args: dict[str, Any] = {"timeout": 60, "check_same_thread": False}
    if parsed.database in (None, "", ":memory:"):
        kwargs.setdefault("poolclass", StaticPool)
    elif fcntl is not None and not parsed.database.startswith("file:"):
        connect_args["factory"] = _queued_writer(os.path.abspath(parsed.database) + "-wlock")
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite driver's own is deferred).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in (
        "foreign_keys=ON",
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=60000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    dbapi_conn = conn.connection.dbapi_connection
    queued = mode == "IMMEDIATE" and isinstance(dbapi_conn, QueuedWriter)
    if queued:
        dbapi_conn.acquire_write_lock()
    try:
        conn.exec_driver_sql(f"BEGIN {mode}")
    except BaseException:
        if queued:
            dbapi_conn.release_write_lock()
        raise


#: Per thread: does this thread hold the writers' flock through one of its connections?
_held = threading.local()


class QueuedWriter(sqlite3.Connection):
    """A sqlite3 connection whose write transactions queue on an ``flock`` (module docstring)."""

    lock_path = ""

    def acquire_write_lock(self) -> None:
        """Wait for the writers' flock (skipped when this thread already holds it elsewhere)."""
        if getattr(self, "_lock_fd", None) is not None or getattr(_held, "active", False):
            return  # a nested writer in this thread: SQLite's busy timeout handles it, as before
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # type: ignore[union-attr]
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd: int | None = fd
        _held.active = True

    def release_write_lock(self) -> None:
        """Release the flock, if this connection holds it (closing the file releases it)."""
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            self._lock_fd = None
            _held.active = False
            os.close(fd)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()


def _queued_writer(lock_path: str) -> type[QueuedWriter]:
    return type("QueuedWriter", (QueuedWriter,), {"lock_path": lock_path})


def alembic_config() -> Config:
    """Alembic configuration pointing at the packaged ``fhir_iastm/migrations``."""
    cfg = Config()
    location = resources.files("fhir_iastm") / "migrations"
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


__all__ = [
    "READ_ONLY",
    "alembic_config",
    "current_revision",
    "make_engine",
    "migrate",
    "normalize_url",
]
