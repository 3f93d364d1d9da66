"""What storing one record costs inside the process, with its FHIR resources and search index
(``service.save_record``, the write of ``POST /api/sessions``) and through ``fhir-iastm import``'s
batches (``service.import_records``).

    .venv/bin/python benchmarks/bench_save.py [--records 500] [--database-url URL]
                                              [--batches 1,100] [--jobs 1,2]

On a fresh database (SQLite in a temporary folder unless ``--database-url``; PostgreSQL: use an
empty scratch database), with ``bench_api.records`` (the good examples, fresh session ids, 10
sessions per patient):

* baseline: ``Store.save_record`` of the record alone (no resources: the write before the facade);
* ``service.save_record``: SQL statements per record (SQLAlchemy events), CPU ms per record split
  into validation-free preparation (hash, mapping, index rows) and the store's transaction, and on
  SQLite the bytes the database grows per record (after a WAL checkpoint);
* ``import_records`` for each ``--batches`` × ``--jobs``: records/s and CPU ms per record (this
  process and its worker processes), validation included.

CPU time is the stable number on a shared machine; wall-clock rates depend on the neighbours.
Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import records  # noqa: E402 — a sibling script
from sqlalchemy import event, text  # noqa: E402

from fhir_iastm.config import Settings  # noqa: E402
from fhir_iastm.facade import resource_set  # noqa: E402
from fhir_iastm.records import load_record, record_hash  # noqa: E402
from fhir_iastm.service import import_records, mapping_settings  # noqa: E402
from fhir_iastm.storage import Store  # noqa: E402


def cpu() -> float:
    """CPU seconds of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def db_bytes(store: Store) -> int | None:
    """SQLite: the database file's size after folding the WAL into it; None elsewhere."""
    if store.engine.dialect.name != "sqlite":
        return None
    raw = store.engine.raw_connection()  # outside a transaction (the store's BEGIN IMMEDIATE)
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        path = cursor.execute("PRAGMA database_list").fetchall()[0][2]
    finally:
        raw.close()
    return os.path.getsize(path)


def per_record(store: Store, raws: list[dict[str, Any]], facade: bool) -> dict[str, float]:
    """Store ``raws`` one transaction each; CPU per record (prepare, store) and statements."""
    settings = mapping_settings(Settings())
    items = [(load_record(raw), raw) for raw in raws]
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(store.engine, "before_cursor_execute", count)
    size, prep, save = db_bytes(store), 0.0, 0.0
    for record, raw in items:
        start = cpu()
        digest = record_hash(record)
        rset = resource_set(record, replace(settings, record_hash=digest)) if facade else None
        mid = cpu()
        store.save_record(record, raw, actor="bench", resources=rset, digest=digest)
        prep, save = prep + mid - start, save + cpu() - mid
    event.remove(store.engine, "before_cursor_execute", count)
    n, after = len(items), db_bytes(store)
    return {"prepare": prep / n * 1000, "store": save / n * 1000, "statements": statements[0] / n,
            "kib": (after - size) / n / 1024 if size is not None and after else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--batches", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1, 100])
    parser.add_argument("--jobs", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1, os.cpu_count() or 1])
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench_save_")
    store = Store(args.database_url or f"sqlite:///{folder}/save.db")
    store.migrate()
    run, n = str(os.getpid()), args.records
    print(f"{n} records per row, {store.engine.dialect.name}, load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print(f"{'write':<44} {'stmts':>6} {'prep ms':>8} {'store ms':>9} {'KiB/rec':>8}")
    for name, facade in (("record only (baseline)", False), ("record + FHIR resources", True)):
        got = per_record(store, records(n, f"{run}{int(facade)}"), facade)
        print(f"{name:<44} {got['statements']:6.1f} {got['prepare']:8.2f} {got['store']:9.2f} "
              f"{got['kib']:8.1f}")
    print(f"\n{'import (validation included)':<44} {'rec/s':>8} {'CPU ms/rec':>11}")
    settings = mapping_settings(Settings())
    for batch in args.batches:
        for jobs in args.jobs:
            raws = records(n, f"{run}b{batch}j{jobs}")
            start, wall = cpu(), time.perf_counter()
            for _item, _result in import_records(store, raws, settings, actor="bench",
                                                 jobs=jobs, batch=batch):
                pass
            wall, used = time.perf_counter() - wall, cpu() - start
            print(f"{f'batch {batch}, jobs {jobs}':<44} {n / wall:8.0f} {used / n * 1000:11.2f}")
    with store.engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM records")).scalar()
    print(f"\n{total} records stored; load average {os.getloadavg()[0]:.1f}")
    store.close()


if __name__ == "__main__":
    main()
