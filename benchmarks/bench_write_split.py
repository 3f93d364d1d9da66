"""The write path's CPU where the store and the import pipeline spend it (branch w9store).

    PYTHONPATH=<checkout> .venv/bin/python benchmarks/bench_write_split.py import FILE N [BATCH]
    PYTHONPATH=<checkout> .venv/bin/python benchmarks/bench_write_split.py save N

``import``: ``service.import_records`` with ``--jobs 2`` of the first N records of FILE (JSON
Lines from ``gen_sessions.py``) into a fresh SQLite file: sessions/s, and the CPU ms per record of
the writing process and of the workers (start-up included). ``save``: ``Store.save_record`` alone
(one transaction per record, what a POST runs after validation and mapping) of N generated
records prepared beforehand, CPU ms per record, the best of 2 rounds after a warm-up round.
``PYTHONPATH`` picks the code measured: run two checkouts one after the other. Numbers, not
assertions.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import fhir_iastm  # first: PYTHONPATH must win over the sibling script's path
from fhir_iastm.config import Settings
from fhir_iastm.service import import_records, mapping_settings, open_store, prepare_record

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_sessions import records  # noqa: E402 — a sibling script


def cpu(who: int = resource.RUSAGE_SELF) -> float:
    used = resource.getrusage(who)
    return used.ru_utime + used.ru_stime


def where() -> str:
    return f"{Path(fhir_iastm.__file__).parent.parent} load {os.getloadavg()[0]:.1f}"


def split(path: str, n: int, batch: int) -> None:
    with open(path, encoding="utf-8") as lines:
        bodies = [json.loads(line) for _, line in zip(range(n), lines, strict=False)]
    store = open_store(f"sqlite:///{tempfile.mkdtemp()}/split.db")
    settings = mapping_settings(Settings())
    wall, mine, theirs = time.perf_counter(), cpu(), cpu(resource.RUSAGE_CHILDREN)
    done = sum(1 for _ in import_records(store, bodies, settings, actor="bench", jobs=2,
                                         batch=batch))
    wall, mine = time.perf_counter() - wall, cpu() - mine
    workers = cpu(resource.RUSAGE_CHILDREN) - theirs
    print(f"{where()}: {done / wall:.0f} sessions/s, writer {mine / done * 1000:.2f}, workers "
          f"{workers / done * 1000:.2f}, total {(mine + workers) / done * 1000:.2f} ms CPU/record")
    store.close()


def save(n: int) -> None:
    settings = mapping_settings(Settings())
    prepared = [prepare_record(b, settings) for b in records(n * 3, f"S{time.time_ns() % 10**7}")]
    store = open_store(f"sqlite:///{tempfile.mkdtemp()}/save.db")
    best = float("inf")
    for k in range(3):  # round 0 warms up
        start = time.process_time()
        for p in prepared[k * n:(k + 1) * n]:
            if not isinstance(p, tuple):
                raise SystemExit(f"generated record refused: {p}")
            store.save_record(p[0], p[1], actor="bench", resources=p[2], digest=p[3])
        if k:
            best = min(best, (time.process_time() - start) / n * 1000)
    print(f"{where()}: Store.save_record {best:.3f} ms CPU/record")
    store.close()


if __name__ == "__main__":
    if sys.argv[1] == "import":
        split(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 100)
    else:
        save(int(sys.argv[2]))
