"""Group commit (``storage.group``, docs/performance.md#group-commit) and the SQLite write lock
(``storage.writelock``, docs/performance.md#write-lock).

Saves made at the same time by several threads share transactions; each is decided as if alone
and the store ends up holding exactly what one-by-one saves store (SQLite and PostgreSQL). The
transactions are made to form deterministically: the first one is held open until the others
are waiting."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from fhir_iastm import service
from fhir_iastm.errors import ConflictRecordError
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.storage import Store, writelock
from fhir_iastm.storage.schema import audit, fhir_resource, outbox, records
from fhir_iastm.storage.writelock import WriteLock, lock_path
from tests.conftest_storage import sample_raw

SETTINGS = MappingSettings()


class Gate:
    """Wraps a store's batch save: records each transaction's sessions; the first transaction
    waits until ``release()`` (so the saves behind it pile up); ``fail`` makes the transactions
    of several records raise."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[list[str]] = []
        self.opened = threading.Event()
        self.go = threading.Event()
        self.fail: Callable[[str], Exception] | None = None
        group = store._group
        self.inner = group._save_many
        group._save_many = self.save_many

    def save_many(self, conn: Any, items: list[Any], actor: str | None) -> list[Any]:
        self.calls.append([item[0].session_id for item in items])
        if len(self.calls) == 1:  # the first transaction stays open until release
            self.opened.set()
            assert self.go.wait(30)
        out = self.inner(conn, items, actor)
        if self.fail is not None and len(items) > 1:
            raise self.fail("injected")  # after the writes: the rollback must undo them
        return out

    def wait_for(self, waiting: int) -> None:
        deadline = time.monotonic() + 30
        while self.store._group.waiting < waiting:
            assert time.monotonic() < deadline, "the saves never queued"
            time.sleep(0.005)


def post(store: Store, body: dict[str, Any], actor: str = "clinic",
         out: dict[str, Any] | None = None) -> threading.Thread:
    """``service.save_record`` in a thread; its result (or error) lands in
    ``out["session/version"]``."""
    out = {} if out is None else out

    def run() -> None:
        key = f"{body['session_id']}/{body['record_version']}"
        try:
            out[key] = service.save_record(store, body, SETTINGS, actor=actor).result
        except Exception as exc:  # noqa: BLE001 — the test inspects it
            out[key] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def queued(store: Store, gate: Gate, saves: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """The first save opens a transaction held by ``gate``; the others queue behind it, in
    order; then all run. The outcomes by ``"session/version"``."""
    out: dict[str, Any] = {}
    (first, actor), *rest = saves
    threads = [post(store, first, actor, out)]
    assert gate.opened.wait(30)
    for n, (body, who) in enumerate(rest, start=1):
        threads.append(post(store, body, who, out))
        gate.wait_for(n)
    gate.go.set()
    for thread in threads:
        thread.join(60)
    return out


def content(store: Store) -> dict[str, Any]:
    """What the store holds, without the columns that depend on timing (ids, order)."""
    with store.read() as conn:
        res = conn.execute(select(fhir_resource.c.res_type, fhir_resource.c.res_id,
                                  fhir_resource.c.version, fhir_resource.c.gone,
                                  fhir_resource.c.body)).all()
        recs = conn.execute(select(records.c.session_id, records.c.record_version,
                                   records.c.record_hash)).all()
        queued = conn.execute(select(outbox.c.session_id, outbox.c.record_version)).all()
        audited = conn.execute(select(audit.c.session_id, audit.c.actor, audit.c.outcome)).all()
    return {
        "resources": sorted((r[0], r[1], r[2], r[3], json.dumps(r[4], sort_keys=True))
                            for r in res),
        "records": sorted(tuple(r) for r in recs),
        "outbox": sorted(tuple(r) for r in queued),
        "audit": sorted(tuple(r) for r in audited),
    }


def bodies(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` sessions; two by two they share a patient (the shared Patient row is written by
    several records of one transaction)."""
    out = []
    for i in range(n):
        raw = sample_raw(f"GC-{tag}-{i:03d}", 1)
        raw["patient"] = dict(raw["patient"], mrn=f"GC{tag}{i // 2:04d}")
        out.append(raw)
    return out


@pytest.fixture
def gate(store: Store) -> Iterator[Gate]:
    g = Gate(store)
    yield g
    g.go.set()


def test_concurrent_saves_share_a_transaction_and_store_what_one_by_one_saves_store(
    store: Store, gate: Gate, tmp_path: Any
) -> None:
    first, *rest = bodies(9, "a")
    out = queued(store, gate, [(b, "clinic") for b in [first, *rest]])
    assert gate.calls == [[first["session_id"]], [b["session_id"] for b in rest]]
    assert {k: v.status for k, v in out.items()} == {
        f"{b['session_id']}/1": "created" for b in [first, *rest]}
    alone = Store(f"sqlite:///{tmp_path}/alone.db", clock=store.clock)
    alone.migrate()
    for body in [first, *rest]:
        service.save_record(alone, body, SETTINGS, actor="clinic")
    assert content(store) == content(alone)
    alone.close()


def test_a_second_version_of_a_session_waits_for_the_next_transaction(
    store: Store, gate: Gate
) -> None:
    v1 = sample_raw("GC-B-001", 1)
    v2 = dict(sample_raw("GC-B-001", 2), notes="second version")
    other = sample_raw("GC-B-002", 1)
    out = queued(store, gate, [(b, "clinic") for b in (sample_raw("GC-B-000", 1), v1, v2, other)])
    assert gate.calls == [["GC-B-000"], ["GC-B-001", "GC-B-002"], ["GC-B-001"]]
    assert out["GC-B-001/1"].status == "created"
    assert out["GC-B-001/2"].status == "new-version"
    assert store.get_record("GC-B-001").record_version == 2


def test_a_conflict_is_answered_to_its_own_save_only(store: Store) -> None:
    service.save_record(store, sample_raw("GC-C-001", 2), SETTINGS, actor="clinic")
    gate = Gate(store)
    out = queued(store, gate, [(sample_raw(f"GC-C-00{i}", 1), "clinic") for i in range(3)])
    assert gate.calls == [["GC-C-000"], ["GC-C-001", "GC-C-002"]]
    assert isinstance(out["GC-C-001/1"], ConflictRecordError)
    assert out["GC-C-002/1"].status == "created"
    assert store.get_record("GC-C-001").record_version == 2


@pytest.mark.parametrize("error", [IntegrityError, OperationalError])
def test_a_failed_shared_transaction_saves_each_record_alone(
    store: Store, gate: Gate, error: Callable[..., Exception]
) -> None:
    gate.fail = lambda _msg: error("INSERT", None, Exception("injected"))
    first, *rest = bodies(4, "d")
    out = queued(store, gate, [(b, "clinic") for b in [first, *rest]])
    assert [len(c) for c in gate.calls] == [1, 3]  # the shared one failed and was rolled back
    assert {k: v.status for k, v in out.items()} == {
        f"{b['session_id']}/1": "created" for b in [first, *rest]}
    assert sorted(r for r, *_ in content(store)["records"]) == sorted(
        b["session_id"] for b in [first, *rest])
    assert len(content(store)["outbox"]) == 4


def test_saves_of_different_clients_take_separate_transactions(store: Store, gate: Gate) -> None:
    out = queued(store, gate, [(sample_raw(f"GC-E-00{i}", 1), who)
                               for i, who in enumerate("abab")])
    assert {k: v.status for k, v in out.items()} == {f"GC-E-00{i}/1": "created" for i in range(4)}
    assert gate.calls == [["GC-E-000"], ["GC-E-001", "GC-E-003"], ["GC-E-002"]]
    audited = {(sid, who) for sid, who, _ in content(store)["audit"]}
    assert audited == {("GC-E-000", "a"), ("GC-E-001", "b"), ("GC-E-002", "a"), ("GC-E-003", "b")}


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def sqlite_file_store(tmp_path: Any) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path}/w.db")
    store.migrate()
    yield store
    store.close()


def hold_lock(path: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_writer_of_another_process_holds_off_this_one_until_it_lets_go(
    sqlite_file_store: Store, tmp_path: Any
) -> None:
    path = lock_path(f"{tmp_path}/w.db")
    assert path is not None
    assert sqlite_file_store.write_lock is not None
    assert sqlite_file_store.write_lock.path == path
    holder = hold_lock(path)
    out: dict[str, Any] = {}
    thread = post(sqlite_file_store, sample_raw("GC-F-001", 1), out=out)
    thread.join(0.5)
    assert thread.is_alive()
    assert not out
    holder.communicate("\n", timeout=30)
    thread.join(30)
    assert out["GC-F-001/1"].status == "created"


def test_a_writer_waiting_past_the_timeout_gets_sqlites_locked_error(tmp_path: Any) -> None:
    path = f"{tmp_path}/x.db-writer.lock"
    holder = hold_lock(path)
    try:
        lock = WriteLock(path, timeout_s=0.2)
        with pytest.raises(OperationalError, match="database is locked"), lock.held():
            pass
    finally:
        holder.communicate("\n", timeout=30)
    with lock.held():  # free again
        pass


def test_an_in_memory_store_locks_its_threads_only() -> None:
    assert lock_path(":memory:") is None
    assert lock_path(None) is None
    memory = Store("sqlite://")
    assert memory.write_lock is not None
    assert memory.write_lock.path is None
    memory.close()


@pytest.mark.integration
def test_a_postgresql_writer_of_another_store_holds_off_this_one_until_it_commits(
        pg_store: Store, pg_url: str) -> None:
    """No file lock on PostgreSQL: the writers' advisory lock, taken by every write transaction
    of every ``Store`` (here another engine: another process or machine), in its transaction."""
    assert pg_store.write_lock is None
    other = Store(pg_url)
    out: dict[str, Any] = {}
    try:
        with other.write() as conn:
            held = conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid()")).scalar()
            assert held == 1
            thread = post(pg_store, sample_raw("GC-P-001", 1), out=out)
            thread.join(0.5)
            assert thread.is_alive()
            assert not out
        thread.join(30)
        assert out["GC-P-001/1"].status == "created"
    finally:
        other.close()


@pytest.mark.integration
def test_a_postgresql_writer_waiting_past_the_timeout_gets_the_lock_error(
        pg_store: Store, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writelock, "WRITERS_TIMEOUT", "200ms")
    other = Store(pg_url)
    try:
        with other.write(), pytest.raises(OperationalError, match="lock timeout"):
            with pg_store.write():
                pass
        with pg_store.write():  # free again
            pass
    finally:
        other.close()
