"""The checkpoint thread of a SQLite file store (``storage.checkpoint``,
docs/performance.md#checkpoints): PASSIVE checkpoints outside the write lock, and the WAL rewound
(a RESTART checkpoint under the write lock) once it holds ``restart_bytes``."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from fhir_iastm import service
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.storage import Store
from fhir_iastm.storage.checkpoint import WAL_SIZE_LIMIT
from tests.conftest_storage import sample_raw

SETTINGS = MappingSettings()


def save_and_checkpoint(store: Store, session_id: str) -> None:
    """Save one record, then wait for the checkpoint thread's next run."""
    assert store.checkpointer is not None
    runs = store.checkpointer.runs
    service.save_record(store, sample_raw(session_id, 1), SETTINGS, actor="clinic")
    deadline = time.monotonic() + 30
    while store.checkpointer.runs == runs:
        assert time.monotonic() < deadline, "the checkpoint thread never ran"
        time.sleep(0.005)


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_file_store_checkpoints_its_wal_from_a_thread_of_its_own(tmp_path: Path) -> None:
    """The connections never checkpoint inside a commit (wal_autocheckpoint 0), and a few writes
    far below SQLite's 1,000-page threshold reach the database file shortly after, copied by the
    store's checkpoint thread."""
    path = tmp_path / "c.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    assert store.checkpointer is not None
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == WAL_SIZE_LIMIT
    size = path.stat().st_size
    save_and_checkpoint(store, "GC-G-001")
    assert path.stat().st_size > size  # the WAL's pages reached the database file
    assert store.checkpointer.running
    store.close()
    assert not store.checkpointer.running
    reopened = Store(f"sqlite:///{path}")
    assert reopened.get_record("GC-G-001").record_version == 1
    reopened.close()


def test_the_wal_is_rewound_once_it_holds_restart_bytes(tmp_path: Path) -> None:
    """Each checkpoint that finds the WAL over ``restart_bytes`` rewinds it: the next save writes
    over the last from the file's beginning (the size stays that of one save), every save stays
    readable. Below the threshold the thread never takes the write lock for a rewind."""
    for restart_bytes, rewinds in ((64 * 1024, 8), (1 << 40, 0)):
        path = tmp_path / f"{rewinds}.db"
        store = Store(f"sqlite:///{path}")
        store.migrate()
        assert store.checkpointer is not None
        store.checkpointer.restart_bytes = restart_bytes
        sizes = []
        for i in range(8):
            save_and_checkpoint(store, f"CK-{rewinds}-{i}")
            sizes.append(wal_size(path))
        assert store.checkpointer.rewinds == rewinds
        assert [store.get_record(f"CK-{rewinds}-{i}").record_version for i in range(8)] == [1] * 8
        store.close()
        if rewinds:
            assert max(sizes) < 1.5 * min(sizes)  # one save's frames, written over each time


def test_a_reader_in_the_log_makes_the_rewind_wait_then_give_up(tmp_path: Path) -> None:
    """A reader still reading a snapshot from the log (an export) cannot be cut off: the rewind
    waits for it only briefly (the write lock is held meanwhile), gives up, and is tried again
    once the WAL has grown by ``restart_bytes`` more; writes go on meanwhile."""
    path = tmp_path / "r.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    assert store.checkpointer is not None
    save_and_checkpoint(store, "CK-R-0")
    one_save = wal_size(path)
    service.save_record(store, sample_raw("CK-R-1", 1), SETTINGS, actor="clinic")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM records").fetchone()[0] == 2  # in the log now
    store.checkpointer.restart_bytes = 64 * 1024  # (the reader is in: no rewind before it)
    try:
        save_and_checkpoint(store, "CK-R-2")
        assert store.checkpointer.rewinds == 0  # given up: the reader is still in the log
        assert wal_size(path) > 0
        service.save_record(store, sample_raw("CK-R-3", 1), SETTINGS, actor="clinic")
        assert reader.execute("SELECT count(*) FROM records").fetchone()[0] == 2  # its snapshot
    finally:
        reader.execute("COMMIT")
        reader.close()
    save_and_checkpoint(store, "CK-R-4")  # the WAL grew by more than restart_bytes: tried again
    assert store.checkpointer.rewinds == 1
    assert one_save > 64 * 1024  # (one save alone is above the threshold)
    assert [store.get_record(f"CK-R-{i}").record_version for i in range(5)] == [1] * 5
    store.close()
