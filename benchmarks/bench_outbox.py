"""Outbox throughput on SQLite and PostgreSQL: saves/s, then claim+complete cycles/s with N workers.

    .venv/bin/python benchmarks/bench_outbox.py [--entries 500] [--workers 2] [--pg URL]

Without ``--pg`` (or ``TEST_DATABASE_URL``) it runs ``scripts/postgres start``. Each backend gets a
fresh schema; records are saved through ``Store.save_record`` (one transaction each: version,
outbox entry, sync state, audit), then drained by worker threads and by worker processes running
``run_worker`` with a no-op push, so the numbers are the store's own cost per entry. Prints one
JSON line per measurement and a summary table; the "floor" line (empty write transactions per
second, one thread) shows what the machine gives in this run; read the others against it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from fhir_iastm.records import load_record  # noqa: E402
from fhir_iastm.storage import Store  # noqa: E402
from fhir_iastm.sync.outcome import PushOutcome  # noqa: E402
from fhir_iastm.sync.worker import run_worker  # noqa: E402

EXAMPLE = ROOT / "tests" / "data" / "examples" / "good-01-lateral-epicondylitis-graston.json"
TABLES = "records, record_versions, sync_state, outbox, audit"


def noop_push(record: Any, last: Any) -> PushOutcome:
    return PushOutcome("pushed", record.session_id, record.record_version)


def light_load(body: dict[str, Any]) -> Any:
    return SimpleNamespace(session_id=body["session_id"], record_version=body["record_version"])


def reset(url: str) -> Store:
    store = Store(url)
    store.migrate()
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(TABLES.split(", ")):
                conn.execute(text(f"DELETE FROM {table}"))
    return store


def fill(store: Store, entries: int) -> float:
    """Save ``entries`` records (2 versions per session); returns saves per second."""
    raw = json.loads(EXAMPLE.read_text())
    base = load_record(raw)
    pairs = []
    for i in range(entries):
        sid, version = f"B-{i // 2:06d}", 1 + i % 2
        pairs.append(
            (
                dataclasses.replace(base, session_id=sid, record_version=version),
                dict(raw, session_id=sid, record_version=version),
            )
        )
    start = time.perf_counter()
    for record, body in pairs:
        store.save_record(record, body, actor="bench")
    return entries / (time.perf_counter() - start)


def _thread_worker(url: str, name: str, barrier: threading.Barrier) -> None:
    store = Store(url)
    barrier.wait(120)
    run_worker(store, noop_push, worker_id=name, once=True, load=light_load)
    store.close()


def _process_worker(url: str, name: str, barrier: Any) -> None:
    store = Store(url)
    barrier.wait(120)
    run_worker(store, noop_push, worker_id=name, once=True, load=light_load)
    store.close()


def drain(url: str, workers: int, kind: str) -> float:
    """Drain the outbox with ``workers`` threads or processes; returns the seconds it took."""
    if kind == "threads":
        barrier: Any = threading.Barrier(workers + 1)
        runners: list[Any] = [
            threading.Thread(target=_thread_worker, args=(url, f"t{n}", barrier))
            for n in range(workers)
        ]
    else:
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(workers + 1)
        runners = [
            ctx.Process(target=_process_worker, args=(url, f"p{n}", barrier))
            for n in range(workers)
        ]
    for runner in runners:
        runner.start()
    barrier.wait(120)  # a worker that dies at start-up fails the run
    start = time.perf_counter()
    for runner in runners:
        runner.join()
    return time.perf_counter() - start


def rearm(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE outbox SET done_at = NULL, outcome = NULL, attempts = 0,"
                " claimed_by = NULL, claimed_until = NULL, claim_token = NULL"
            )
        )
        conn.execute(text("UPDATE sync_state SET state = 'queued', pushed_version = NULL"))


def floor(store: Store, count: int = 300) -> float:
    """The backend's floor in this run: trivial write transactions (BEGIN; SELECT 1; COMMIT)/s."""
    start = time.perf_counter()
    for _ in range(count):
        with store.write() as conn:
            conn.execute(text("SELECT 1"))
    return count / (time.perf_counter() - start)


def measure(label: str, url: str, entries: int, workers: int) -> list[dict[str, Any]]:
    store = reset(url)
    results = [{"backend": label, "what": "floor: empty txn", "per_s": round(floor(store), 1)}]
    saves = fill(store, entries)
    results.append({"backend": label, "what": "save_record", "per_s": round(saves, 1)})
    for kind in ("threads", "processes"):
        rearm(store)
        seconds = drain(url, workers, kind)
        assert store.outbox_counts()["done"] == entries, store.outbox_counts()
        results.append(
            {
                "backend": label,
                "what": f"drain {workers} {kind}",
                "per_s": round(entries / seconds, 1),
            }
        )
    store.close()
    for row in results:
        print(json.dumps(row), flush=True)  # noqa: T201 — a benchmark reports on stdout
    return results


def bench_database(base: str) -> str:
    """A database of its own (``fhir_iastm_bench``) next to ``base``, so tests are never touched."""
    from sqlalchemy.engine import make_url

    from fhir_iastm.storage.engine import make_engine, normalize_url

    base = normalize_url(base)
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if (
            conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = 'fhir_iastm_bench'")
            ).first()
            is None
        ):
            conn.execute(text("CREATE DATABASE fhir_iastm_bench"))
    admin.dispose()
    return make_url(base).set(database="fhir_iastm_bench").render_as_string(hide_password=False)


def start_postgres() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "postgres"), "start"], check=True, capture_output=True, text=True
    ).stdout
    return out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg", default=os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()
    pg = bench_database(args.pg or start_postgres())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += measure("sqlite", f"sqlite:///{tmp}/bench.db", args.entries, args.workers)
    rows += measure("postgresql", pg, args.entries, args.workers)
    print(  # noqa: T201
        f"\n{'backend':<11} {'measurement':<22} {'per second':>10}   (load avg "
        f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)"
    )
    for row in rows:
        print(f"{row['backend']:<11} {row['what']:<22} {row['per_s']:>10}")  # noqa: T201


if __name__ == "__main__":
    main()
