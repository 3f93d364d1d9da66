"""One writer at a time, handed over at once (docs/performance.md#write-lock).

SQLite lets one transaction write at a time. A second ``BEGIN IMMEDIATE`` gets ``SQLITE_BUSY`` and
its busy handler sleeps 1, 2, 5, 10, … 100 ms between tries, however soon the lock is free: under
concurrent POSTs (two gunicorn processes of 16 threads) those sleeps were the latency tail. So a
``Store`` on a SQLite file takes this lock around each write transaction: a ``threading.Lock``
for the threads of one process, then an advisory ``flock`` on ``<database>-writer.lock`` for the
processes (another process is polled every half millisecond). SQLite's own lock stays the
guarantee; the busy handler still serves writers that do not go through a ``Store`` (the
``sqlite3`` shell). Waiting longer than the busy timeout raises the error SQLite would.

On PostgreSQL every write transaction of a ``Store`` first takes one transaction-level advisory
lock (:func:`hold_postgresql_writers`), in every process on every machine: without it two
transactions could each find a new shared resource missing (a Patient whose first sessions two
workers store at once) and both insert it — the later one failing on the unique key, its whole
batch then saved again one record at a time — or wait on each other's new rows until
PostgreSQL's deadlock check (1 s) aborts one. Group commit still puts each process's waiting
saves in one transaction.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.exc import OperationalError

from fhir_iastm.storage import driver
from fhir_iastm.storage.engine import memory_database

#: How often another process's lock is tried again while it is held.
POLL_S = 0.0005
#: The PostgreSQL advisory lock of writers: "IASTMWRT" in ASCII, as a 64-bit key.
WRITERS_KEY = int.from_bytes(b"IASTMWRT", "big")
#: How long a PostgreSQL writer waits for it before the error PostgreSQL raises (as on SQLite).
WRITERS_TIMEOUT = "60s"


class WriteLock:
    """The write lock of one SQLite database (``path`` None: in memory, threads only)."""

    def __init__(self, path: str | None, timeout_s: float = 60.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._pid = -1
        self._guard = threading.Lock()
        self._threads = threading.Lock()
        self._fd: int | None = None

    def _for_this_process(self) -> None:
        """A forked child (a gunicorn worker) gets its own thread lock and file descriptor."""
        with self._guard:
            if self._pid == os.getpid():
                return
            self._threads = threading.Lock()
            self._fd = None
            if self.path is not None:
                try:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
                except OSError:  # a read-only folder: SQLite's busy handler alone, as before
                    self._fd = None
            self._pid = os.getpid()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the body (a write transaction)."""
        if self._pid != os.getpid():
            self._for_this_process()
        deadline = time.monotonic() + self.timeout_s
        if not self._threads.acquire(timeout=self.timeout_s):
            raise _locked()
        try:
            if self._fd is not None:
                self._lock_file(self._fd, deadline)
            try:
                yield
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    @staticmethod
    def _lock_file(fd: int, deadline: float) -> None:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _locked() from None
                time.sleep(POLL_S)


def _locked() -> OperationalError:
    """The error SQLite itself raises when its busy timeout runs out."""
    return OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))


def hold_postgresql_writers(conn: Connection) -> None:
    """Take the writers' advisory lock in ``conn``'s transaction (released when it ends),
    waiting at most :data:`WRITERS_TIMEOUT` (``lock_timeout``, for this transaction)."""
    driver.select_fixed(conn, "writers", lambda: select(
        func.set_config("lock_timeout", bindparam("timeout"), True),
        func.pg_advisory_xact_lock(bindparam("key"))),
        {"timeout": WRITERS_TIMEOUT, "key": WRITERS_KEY})


def lock_path(database: str | None) -> str | None:
    """The lock file of a SQLite database file (None for an in-memory database)."""
    if memory_database(database):
        return None
    return f"{database}-writer.lock"


__all__ = ["POLL_S", "WRITERS_KEY", "WriteLock", "hold_postgresql_writers", "lock_path"]
