"""The outbox on a real PostgreSQL (``scripts/postgres``): several workers — threads and processes —
drain 500 entries, each pushed exactly once and per session in record_version order; a worker
killed with SIGKILL in the middle of a push loses nothing: its lease expires and another worker
re-pushes that one entry (at-least-once delivery; the real push is idempotent)."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from fhir_iastm.records import load_record
from fhir_iastm.storage import Store
from fhir_iastm.storage.schema import outbox, sync_state
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.worker import run_worker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = {**{f"S-{i:03d}": 3 for i in range(100)}, **{f"S-{i:03d}": 2 for i in range(100, 200)}}
TOTAL = sum(SESSIONS.values())  # 500 entries

# A worker process: says it is ready, waits for the go-file, then drains with a fake push that logs
# every call to fakelog.calls (autocommit, so a SIGKILL cannot roll the log back). With
# hang_after=N, the (N+1)-th push logs itself and then hangs, so the test can kill it mid-push.
# The loader only reads the two keys the fake push needs: record loading is tested elsewhere, and
# importing it (simple-icd-10-cm) would cost each process seconds of start-up.
WORKER = r"""
import os, sys, time
from pathlib import Path
from types import SimpleNamespace
import psycopg
from fhir_iastm.storage import Store
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.worker import run_worker

url, worker_id, go_file, hang_after, lease, once = sys.argv[1:7]
hang_after, lease = int(hang_after), float(lease)
log = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
calls = 0

def push(record, last):
    global calls
    calls += 1
    log.execute(
        "INSERT INTO fakelog.calls (session_id, record_version, last_version, worker)"
        " VALUES (%s, %s, %s, %s)",
        (record.session_id, record.record_version, last and last.record_version, worker_id))
    if hang_after and calls > hang_after:
        time.sleep(3600)
    return PushOutcome("pushed", record.session_id, record.record_version,
                       identifiers=(f"sys|{record.session_id}/{record.record_version}",))

def load(body):
    return SimpleNamespace(session_id=body["session_id"], record_version=body["record_version"])

store = Store(url)
Path(go_file + "." + worker_id).touch()
while not os.path.exists(go_file):
    time.sleep(0.005)
run_worker(store, push, worker_id=worker_id, once=once == "once", poll_interval=0.05,
           lease_seconds=lease, load=load)
"""


@pytest.fixture(scope="module")
def filled(pg_url: str) -> str:
    """Save the 500 versions once per module through ``save_record``, interleaved across sessions
    as clinics would send them; ``store`` below re-arms the outbox for each test."""
    from sqlalchemy import text

    from tests.conftest_storage import TABLES, sample_raw

    store = Store(pg_url)
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    for version in (1, 2, 3):
        for sid, versions in SESSIONS.items():
            if version <= versions:
                raw = sample_raw(sid, version, notes=f"v{version}")
                store.save_record(load_record(raw), raw, actor="test")
    store.close()
    return pg_url


@pytest.fixture
def store(filled: str):
    """The filled store with every entry pending again and nothing pushed (a fresh outbox)."""
    store = Store(filled)
    with store.write() as conn:
        conn.execute(
            outbox.update().values(
                done_at=None,
                outcome=None,
                attempts=0,
                claimed_by=None,
                claimed_until=None,
                claim_token=None,
                next_attempt_at=outbox.c.created_at,
            )
        )
        conn.execute(
            sync_state.update().values(
                state="queued",
                pushed_version=None,
                pushed_hash=None,
                pushed_identifiers=None,
                fhir_ids=None,
                attempts=0,
            )
        )
    assert store.outbox_counts()["pending"] == TOTAL
    yield store
    store.close()


@pytest.fixture
def fakelog(pg_url: str):
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS fakelog CASCADE")
        conn.execute("CREATE SCHEMA fakelog")
        conn.execute(
            "CREATE TABLE fakelog.calls (id bigserial PRIMARY KEY, session_id text,"
            " record_version int, last_version int, worker text)"
        )
        yield conn
        conn.execute("DROP SCHEMA fakelog CASCADE")


def logged(conn) -> list[tuple[str, int, int | None, str]]:
    return conn.execute(
        "SELECT session_id, record_version, last_version, worker FROM fakelog.calls ORDER BY id"
    ).fetchall()


def assert_in_order(calls) -> None:
    """Per session: versions in order, and each push saw the previous version as last pushed."""
    by_session = collections.defaultdict(list)
    for sid, version, last, _ in calls:
        by_session[sid].append((version, last))
    for sid, seen in by_session.items():
        versions = [v for v, _ in seen]
        assert versions == sorted(versions), sid
        first = [(v, last) for i, (v, last) in enumerate(seen) if i == 0 or seen[i - 1][0] != v]
        assert first == [(v, v - 1 if v > 1 else None) for v in range(1, SESSIONS[sid] + 1)], sid


def spawn(
    pg_url: str,
    worker_id: str,
    go: Path,
    *,
    hang_after: int = 0,
    lease: float = 30,
    once: bool = True,
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [pg_url, worker_id, str(go), str(hang_after), str(lease), "once" if once else "loop"]
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], cwd=ROOT, env=env)


def start(go: Path, *procs_and_ids: tuple[subprocess.Popen, str]) -> None:
    """Wait until every worker process has imported everything, then let them all go at once."""
    deadline = time.monotonic() + 120
    for proc, worker_id in procs_and_ids:
        while not Path(f"{go}.{worker_id}").exists():
            assert proc.poll() is None, f"worker {worker_id} died during start-up"
            assert time.monotonic() < deadline, f"worker {worker_id} did not start"
            time.sleep(0.02)
    go.touch()


def test_two_worker_threads_push_each_entry_exactly_once(store, pg_url) -> None:
    calls, lock, start = [], threading.Lock(), threading.Barrier(2)

    def push(record, last):
        with lock:
            calls.append(
                (
                    record.session_id,
                    record.record_version,
                    last and last.record_version,
                    threading.current_thread().name,
                )
            )
        return PushOutcome("pushed", record.session_id, record.record_version)

    def work(name: str) -> None:
        store = Store(pg_url)  # each worker has its own engine and connections
        start.wait()
        run_worker(store, push, worker_id=name, once=True)
        store.close()

    threads = [threading.Thread(target=work, args=(f"t{n}",), name=f"t{n}") for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    counts = collections.Counter((sid, v) for sid, v, _, _ in calls)
    assert len(counts) == TOTAL
    assert set(counts.values()) == {1}
    assert_in_order(calls)
    assert {w for *_, w in calls} == {"t0", "t1"}  # both really worked concurrently
    assert store.outbox_counts() == {"pending": 0, "in_flight": 0, "done": TOTAL, "dead-letter": 0}


def test_two_worker_processes_push_each_entry_exactly_once(
    store, pg_url, fakelog, tmp_path
) -> None:
    go = tmp_path / "go"
    procs = [spawn(pg_url, f"p{n}", go) for n in range(2)]
    start(go, (procs[0], "p0"), (procs[1], "p1"))
    assert [p.wait(120) for p in procs] == [0, 0]
    calls = logged(fakelog)
    counts = collections.Counter((sid, v) for sid, v, _, _ in calls)
    assert len(counts) == TOTAL
    assert set(counts.values()) == {1}
    assert_in_order(calls)
    assert {w for *_, w in calls} == {"p0", "p1"}
    assert store.outbox_counts()["done"] == TOTAL


def test_a_killed_worker_loses_nothing(store, pg_url, fakelog, tmp_path) -> None:
    go = tmp_path / "go"
    doomed = spawn(pg_url, "doomed", go, hang_after=40, lease=3, once=False)
    survivor = spawn(pg_url, "survivor", go, lease=3, once=False)
    start(go, (doomed, "doomed"), (survivor, "survivor"))
    deadline = time.monotonic() + 120
    while sum(1 for c in logged(fakelog) if c[3] == "doomed") <= 40:  # hung inside push 41
        assert time.monotonic() < deadline
        assert doomed.poll() is None
        time.sleep(0.02)
    doomed.send_signal(signal.SIGKILL)
    assert doomed.wait(10) == -signal.SIGKILL
    newcomer = spawn(pg_url, "newcomer", go, lease=3, once=False)
    while store.outbox_counts()["pending"]:
        assert time.monotonic() < deadline, store.outbox_counts()
        time.sleep(0.05)
    for proc in (survivor, newcomer):  # graceful stop of polling workers
        proc.send_signal(signal.SIGTERM)
    assert [survivor.wait(10), newcomer.wait(10)] == [0, 0]

    calls = logged(fakelog)
    hung = [(sid, v) for sid, v, _, w in calls if w == "doomed"][-1]
    counts = collections.Counter((sid, v) for sid, v, _, _ in calls)
    assert len(counts) == TOTAL  # nothing lost
    assert {k: n for k, n in counts.items() if n != 1} == {hung: 2}  # only the killed push, again
    assert_in_order(calls)
    with store.read() as conn:
        done = conn.execute(
            select(outbox.c.attempts, outbox.c.outcome).where(
                outbox.c.session_id == hung[0], outbox.c.record_version == hung[1]
            )
        ).one()
    assert tuple(done) == (2, "pushed")
    assert store.outbox_counts() == {"pending": 0, "in_flight": 0, "done": TOTAL, "dead-letter": 0}
