"""SQLite: the write-ahead log copied back into the database by a thread of its own
(docs/performance.md#checkpoints).

By default SQLite copies its WAL into the database file (a checkpoint, with an fsync) inside the
commit that finds the WAL over 1,000 pages: every few POSTs a commit took 10–40 ms instead of 3,
with the write lock held, so every other writer waited too. A ``Store`` on a SQLite file turns
that off on its connections and runs a PASSIVE checkpoint from this thread shortly after writes
instead (at most every ``interval_s``), outside the write lock: a PASSIVE checkpoint never waits
for readers or writers. What a checkpoint copies is already durable in the WAL (the commit wrote
it there); a process that stops before its checkpoint leaves it to the next one, or to SQLite,
which checkpoints when the last connection closes and recovers the WAL when the file is opened.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)


class Checkpointer:
    """The checkpoint thread of one SQLite engine in this process: started by a write, gone
    after ``idle_s`` without one."""

    def __init__(self, engine: Engine, interval_s: float = 0.05, idle_s: float = 10.0) -> None:
        self.engine = engine
        self.interval_s, self.idle_s = interval_s, idle_s
        self.runs = 0
        self._guard = threading.Lock()
        self._pid = -1
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        event.listen(engine, "connect", _no_autocheckpoint)

    @property
    def running(self) -> bool:
        """Whether this process's checkpoint thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

    def wrote(self) -> None:
        """Called after each write transaction: a checkpoint is due."""
        if self._pid != os.getpid():  # first use, or a forked child: its own events and thread
            with self._guard:
                self._pid = os.getpid()
                self._dirty, self._stop, self._thread = threading.Event(), threading.Event(), None
        self._dirty.set()
        if self._thread is None:
            with self._guard:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint",
                                                    daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._dirty.wait(self.idle_s):
                with self._guard:
                    if not self._dirty.is_set():  # idle: gone until the next write
                        self._thread = None
                        return
            if self._stop.wait(self.interval_s):  # let more writes gather; a last one on stop
                self._checkpoint()
                return
            self._dirty.clear()
            self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            conn = self.engine.raw_connection()
            try:
                conn.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                conn.close()
            self.runs += 1
        except Exception as exc:  # noqa: BLE001 — the next write brings the next try
            log.warning("SQLite checkpoint failed: %s", type(exc).__name__)

    def close(self) -> None:
        """Stop this process's thread after a last checkpoint (``Store.close``)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._stop.set()
        self._dirty.set()
        thread.join(30)
        with self._guard:
            self._thread = None
            self._stop = threading.Event()


def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


__all__ = ["Checkpointer"]
