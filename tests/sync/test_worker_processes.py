"""Two worker processes on one SQLite file (BEGIN IMMEDIATE, single writer): every entry is pushed
exactly once and each session's versions in order — what several gunicorn workers on the default
store rely on."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
from pathlib import Path

from fhir_iastm.storage import Store

ROOT = Path(__file__).resolve().parents[2]

# Each process logs "session_id version" lines to its own file (flushed before completing).
WORKER = r"""
import os, sys, time
from pathlib import Path
from types import SimpleNamespace
from fhir_iastm.storage import Store
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.worker import run_worker

url, worker_id, go, log_path = sys.argv[1:5]
log = open(log_path, "a", buffering=1)

def push(record, last):
    log.write(f"{record.session_id} {record.record_version} {last and last.record_version}\n")
    time.sleep(0.003)  # a push takes time, outside any transaction: the other worker gets its turn
    return PushOutcome("pushed", record.session_id, record.record_version)

def load(body):
    return SimpleNamespace(session_id=body["session_id"], record_version=body["record_version"])

store = Store(url)
Path(go + "." + worker_id).touch()
while not os.path.exists(go):
    time.sleep(0.005)
run_worker(store, push, worker_id=worker_id, once=True, load=load)
"""


def test_two_processes_share_one_sqlite_outbox(tmp_path, make_record) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store(url)
    store.migrate()
    expected = set()
    for version in (1, 2, 3):
        for i in range(40):
            store.save_record(*make_record(f"S-{i:02d}", version, notes=f"v{version}"), actor="t")
            expected.add((f"S-{i:02d}", version))
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", WORKER, url, name, str(go), str(tmp_path / f"{name}.log")],
            cwd=ROOT,
            env=env,
        )
        for name in ("a", "b")
    }
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.{name}").exists() for name in procs):
        assert all(p.poll() is None for p in procs.values()), "a worker died during start-up"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    go.touch()
    assert [p.wait(120) for p in procs.values()] == [0, 0]

    calls = {name: (tmp_path / f"{name}.log").read_text().split("\n")[:-1] for name in procs}
    pushed = [tuple(line.split()) for lines in calls.values() for line in lines]
    counts = collections.Counter((sid, int(v)) for sid, v, _ in pushed)
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert all(calls.values()), {name: len(lines) for name, lines in calls.items()}
    for sid, version, last in pushed:  # each push saw the previous version as the last pushed
        assert last == (str(int(version) - 1) if version != "1" else "None"), (sid, version)
    assert store.outbox_counts()["done"] == len(expected)
