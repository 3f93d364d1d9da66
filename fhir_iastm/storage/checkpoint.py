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

A PASSIVE checkpoint never rewinds the WAL, though: SQLite starts writing at its beginning again
only when a writer begins with every frame copied and no reader in the log, which a steady stream
of writes never offers. The file then grew by every commit (1.6 GB in 17 s at 200 POST/s) and the
POST p99 was 164–199 ms instead of 13–15 ms with the log rewound. So once the WAL holds
``restart_bytes``, the thread takes the store's write lock (writers pause, readers go on) and runs
a RESTART checkpoint: the few frames written since the PASSIVE one are copied, the readers still in
the log are waited for (``RESTART_WAIT_MS`` at most; a reader that takes longer, such as a bulk
export, makes it give up until the WAL has grown by ``restart_bytes`` again) and the next commit
writes at the file's beginning, over blocks already there (a TRUNCATE checkpoint, which empties the
file, measured slower: the file then grows again). A file that a put-off rewind let grow is cut
back to ``WAL_SIZE_LIMIT`` by the first commit after the next rewind.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine, event

from fhir_iastm.storage.engine import BUSY_TIMEOUT_MS

log = logging.getLogger(__name__)

#: The WAL size at which the thread rewinds it (docs/performance.md#checkpoints).
RESTART_BYTES = 16 * 1024 * 1024
#: How long a rewind waits for the readers still in the log, with the write lock held.
RESTART_WAIT_MS = 20
#: The size SQLite cuts the WAL file back to after a rewind (``journal_size_limit``).
WAL_SIZE_LIMIT = 4 * RESTART_BYTES


class Checkpointer:
    """The checkpoint thread of one SQLite engine in this process: started by a write, gone
    after ``idle_s`` without one."""

    def __init__(self, engine: Engine, write_lock: Callable[[], AbstractContextManager[None]],
                 interval_s: float = 0.05, idle_s: float = 10.0,
                 restart_bytes: int = RESTART_BYTES) -> None:
        self.engine = engine
        self.write_lock = write_lock
        self.interval_s, self.idle_s = interval_s, idle_s
        self.restart_bytes = restart_bytes
        self.runs = self.rewinds = 0
        self._gave_up_at = 0  # the WAL size at the last rewind given up, 0 after one done
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
                cursor = conn.cursor()
                _, frames, _ = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                size = frames * cursor.execute("PRAGMA page_size").fetchone()[0]
                if size >= self._gave_up_at + self.restart_bytes:
                    self._rewind(cursor, size)
            finally:
                conn.close()
            self.runs += 1
        except Exception as exc:  # noqa: BLE001 — the next write brings the next try
            log.warning("SQLite checkpoint failed: %s", type(exc).__name__)

    def _rewind(self, cursor: Any, size: int) -> None:
        """A RESTART checkpoint under the write lock; put off (until the WAL has grown by
        ``restart_bytes`` more) if a reader stays in the log longer than ``RESTART_WAIT_MS``."""
        with self.write_lock():
            cursor.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                busy = cursor.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            finally:
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if busy:
            log.info("SQLite WAL rewind put off: a reader is still in the log (%d bytes)", size)
            self._gave_up_at = size
        else:
            self._gave_up_at = 0
            self.rewinds += 1

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
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


__all__ = ["Checkpointer"]
