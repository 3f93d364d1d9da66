"""CPU of issue 9's patient search in process, the read path's fast paths on and off in
alternating blocks of the same run (so all meet the same load on a shared machine; each block's
modes in turn, so none always reads the store's pages first).

    .venv/bin/python benchmarks/bench_search_cpu.py --database-url sqlite:////path/store.db
        [--patients 100] [--rounds 4] [--block 50]

Through Flask's test client (routing, auth, parameters, SQL, bundle, JSON, request log and the
AuditEvent of every read, as served): ``Patient?identifier=<system>|<mrn>`` and
``Procedure?patient=<id>&_include=Procedure:patient`` for ``--patients`` patients of a kept store
(``bench_patient_search.py``'s sample). Four modes, alternating block by block: ``plain`` (the
searchset encoded whole, the AuditEvent writer storing each event as it comes: what the facade did
before), ``spliced`` (the stored bodies' text spliced in), ``linger`` (events gathered for 0.1 s)
and ``fast`` (both, as served now). A block's
CPU is this process's (request threads and the writer thread), its writer flushed at the end.
Prints ms CPU per request of each mode, per request kind, and the ratio. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_patient_search import _patients  # noqa: E402 — a sibling script


def _plain_searchset(base: str, parsed: Any, result: Any, args: Any, outcome: Any) -> str:
    from fhir_iastm.facade.bundle import searchset

    return json.dumps(searchset(base, parsed, result, args, outcome), separators=(",", ":"),
                      ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--block", type=int, default=50, help="requests per block")
    args = parser.parse_args(argv)
    os.environ["IASTM_DATABASE_URL"] = args.database_url
    import logging

    from fhir_iastm.api import create_app
    from fhir_iastm.api import fhir as views

    app = create_app()
    logging.disable(logging.INFO)  # the request log's records are built, not written
    client = app.test_client()
    audit = app.extensions["fhir_iastm"].audit
    fast_searchset = views.searchset_json
    _, patients = _patients(args.database_url, args.patients)
    kinds = {
        "Patient?identifier": [f"/fhir/Patient?identifier={urllib.parse.quote(t, safe='')}"
                               for t, _ in patients],
        "Procedure?patient&_include": [
            f"/fhir/Procedure?patient={pid}&_include=Procedure:patient" for _, pid in patients],
    }
    modes = {"plain": (_plain_searchset, 0.0), "spliced": (fast_searchset, 0.0),
             "linger": (_plain_searchset, 0.1), "fast": (fast_searchset, 0.1)}
    cpu: dict[tuple[str, str], list[float]] = {}
    for path in [p for paths in kinds.values() for p in paths[:5]]:
        client.get(path)  # warm-up
    order = list(modes)
    for _ in range(args.rounds):
        for kind, paths in kinds.items():
            for start in range(0, len(paths), args.block):
                order = order[1:] + order[:1]  # each mode first in turn: no cache favours one
                for mode in order:
                    searchset_json, linger = modes[mode]
                    views.searchset_json = searchset_json  # type: ignore[assignment]
                    audit.linger = linger
                    began = time.process_time()
                    for path in paths[start:start + args.block]:
                        if client.get(path).status_code != 200:
                            raise SystemExit(f"{path}: not 200")
                    audit.flush()
                    count = len(paths[start:start + args.block])
                    per = (time.process_time() - began) * 1000 / count
                    cpu.setdefault((kind, mode), []).append(per)
    print(f"{len(patients)} patients x {args.rounds} rounds, blocks of {args.block}; load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| request | " + " | ".join(f"{m} ms CPU" for m in modes) + " | fast / plain |")
    print("|---|" + "---:|" * (len(modes) + 1))
    for kind in kinds:
        ms = [statistics.median(cpu[(kind, m)]) for m in modes]
        print(f"| {kind} | " + " | ".join(f"{v:.2f}" for v in ms) + f" | {ms[-1] / ms[0]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
