"""Where a stored record's CPU goes, stage by stage, and how the import splits it.

    PYTHONPATH=<checkout> .venv/bin/python benchmarks/bench_write_cpu.py [--records 1200]
                                                                        [--jobs 2] [--batch 100]

1. The preparation of a record, one stage at a time on ``--records`` generated sessions
   (``gen_sessions.records``), CPU ms per record: validation (``check_record``), the record
   hash, the mapping (``to_fhir``), logical ids and literal references (``stored_resources``),
   the content hash and the index rows of each resource, and the JSON of the stored bodies.
2. ``service.import_records`` (what ``fhir-iastm import`` runs) on a fresh SQLite file with
   ``--jobs`` worker processes and ``--batch`` records per transaction: sessions/s, and the CPU
   ms per record of this process (it hands out the batches; with ``--jobs 1`` it does all the
   work) and of the workers (they validate, map and store their batches in turn).
3. ``POST /api/sessions`` through Flask's test client (in process, no network; the client's
   own work is included): CPU ms per request, the best of 4 rounds of ``--posts`` records.

``PYTHONPATH`` picks the code measured (a checkout of ``main`` against this one, run one after
the other, so that both see the same load). Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import fhir_iastm  # first: gen_sessions puts this checkout on sys.path, PYTHONPATH must win
from fhir_iastm.config import Settings
from fhir_iastm.facade import extract
from fhir_iastm.facade.resources import stored_resources
from fhir_iastm.mapping import to_fhir
from fhir_iastm.records import check_record, record_hash
from fhir_iastm.service import import_records, mapping_settings, open_store
from fhir_iastm.storage.engine import compact_json

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_sessions import records  # noqa: E402 — a sibling script


def cpu(who: int = resource.RUSAGE_SELF) -> float:
    used = resource.getrusage(who)
    return used.ru_utime + used.ru_stime


def stage(name: str, work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``work`` on every item; prints its CPU ms per item."""
    start = cpu()
    out = [work(item) for item in items]
    print(f"  {name:34s} {(cpu() - start) / len(items) * 1000:6.3f} ms/record")
    return out


def stages(bodies: list[dict[str, Any]]) -> None:
    settings = mapping_settings(Settings())
    check_record(bodies[0])  # the code tables load outside the clock
    print("preparation, one stage at a time:")
    recs = stage("check_record (validation)", lambda b: check_record(b)[0], bodies)
    hashes = stage("record_hash", record_hash, recs)
    pairs = list(zip(recs, hashes, strict=True))
    bundles = stage("to_fhir (mapping)", lambda p: to_fhir(
        p[0], replace(settings, record_hash=p[1])), pairs)
    found = stage("stored_resources (ids, references)",
                  lambda b: stored_resources(b, copy_=False), bundles)
    stage("content_hash of each resource", lambda rs: [extract.content_hash(r) for r in rs],
          found)
    stage("index rows of each resource", lambda rs: [
        extract._index_rows(r, r["resourceType"]) for r in rs], found)
    stage("JSON of the stored bodies", lambda rs: [compact_json(r) for r in rs], found)


def split(lines: list[str], jobs: int, batch: int) -> None:
    store = open_store(f"sqlite:///{tempfile.mkdtemp()}/write_cpu.db")
    settings = mapping_settings(Settings())
    wall, mine = time.perf_counter(), cpu()
    bodies = [json.loads(line) for line in lines]
    done = sum(1 for _ in import_records(store, bodies, settings, actor="bench", jobs=jobs,
                                         batch=batch))
    wall, mine = time.perf_counter() - wall, cpu() - mine
    workers = cpu(resource.RUSAGE_CHILDREN)
    print(f"import_records --jobs {jobs} --batch {batch}: {done / wall:.0f} sessions/s, "
          f"this process {mine / done * 1000:.2f} ms/record, "
          f"workers (they prepare and store) {workers / done * 1000:.2f} ms/record "
          f"(start-up included)")
    store.close()


def posts(bodies: list[dict[str, Any]], rounds: int = 4) -> None:
    from fhir_iastm.api import create_app

    folder = tempfile.mkdtemp()
    app = create_app(Settings.from_env({"IASTM_DATABASE_URL": f"sqlite:///{folder}/post.db",
                                        "IASTM_API_TOKENS": "bench:read+write"}))
    client = app.test_client()
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    sent = [json.dumps(b).encode() for b in bodies]
    size = len(sent) // (rounds + 1)
    best = float("inf")
    for k in range(rounds + 1):  # round 0 warms up
        start = cpu()
        for body in sent[k * size:(k + 1) * size]:
            answer = client.post("/api/sessions", data=body, headers=headers)
            if answer.status_code != 201:
                raise SystemExit(f"POST answered {answer.status_code}: {answer.data[:300]!r}")
        if k:
            best = min(best, (cpu() - start) / size * 1000)
    print(f"POST /api/sessions (test client): {best:.2f} ms CPU/request, best of {rounds} "
          f"rounds of {size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--posts", type=int, default=150, help="records per POST round")
    args = parser.parse_args()
    run = f"W{time.time_ns() % 10**7}"
    lines = [json.dumps(r) for r in records(args.records, run)]
    print(f"{Path(fhir_iastm.__file__).parent.parent}: {args.records} records, "
          f"load {os.getloadavg()[0]:.1f}")
    stages([json.loads(line) for line in lines])
    split(lines, args.jobs, args.batch)
    logging.disable(logging.INFO)  # one access-log line per request otherwise
    posts(list(records(args.posts * 5, run + "P")))
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
