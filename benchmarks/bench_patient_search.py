"""In-process cost of the EHR patient search on a kept store (issue 9: reads flat in store size).

    .venv/bin/python benchmarks/bench_patient_search.py --database-url sqlite:////path/store.db
        [--patients 200] [--rounds 5]

Through Flask's test client (no HTTP server, so only the service's own work is timed): for each of
``--patients`` patients sampled across the store, ``Patient?identifier=<system>|<mrn>`` and
``Procedure?patient=<id>&_include=Procedure:patient``; ``GET /healthz`` is the baseline of the
same run. Prints the median and p95 wall time of each kind and its ratio to the baseline, and the
number of stored sessions. Run it on stores of different sizes (``bench_facade.py --data`` keeps
them) to see how the cost grows. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text


def _patients(url: str, count: int) -> tuple[int, list[tuple[str, str]]]:
    """The number of stored sessions, and (identifier token, Patient id) of ``count`` patients
    spread over the store."""
    engine = create_engine(url)
    with engine.connect() as conn:
        sessions = conn.execute(text("SELECT count(*) FROM records")).scalar_one()
        total = conn.execute(text(
            "SELECT count(*) FROM fhir_resource WHERE res_type = 'Patient'")).scalar_one()
        step = max(1, total // count)
        rows = conn.execute(text(
            "SELECT r.res_id, t.system, t.code FROM fhir_resource r JOIN fhir_token t"
            " ON t.res_pk = r.pk AND t.param = 'identifier'"
            " WHERE r.res_type = 'Patient' ORDER BY r.pk")).all()
    engine.dispose()
    return sessions, [(f"{sys}|{code}", rid) for rid, sys, code in rows[::step]][:count]


def _timed(get: Callable[[str], Any], paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        started = time.perf_counter()
        response = get(path)
        out.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ["IASTM_DATABASE_URL"] = args.database_url
    from fhir_iastm.api import create_app

    client = create_app().test_client()
    sessions, patients = _patients(args.database_url, args.patients)
    by_id = [f"/fhir/Patient?identifier={urllib.parse.quote(token, safe='')}"
             for token, _ in patients]
    procs = [f"/fhir/Procedure?patient={pid}&_include=Procedure:patient" for _, pid in patients]
    times: dict[str, list[float]] = {"healthz": [], "Patient?identifier": [],
                                     "Procedure?patient&_include": []}
    _timed(client.get, ["/healthz"] + by_id[:5] + procs[:5])  # warm-up
    for _ in range(args.rounds):
        times["healthz"] += _timed(client.get, ["/healthz"] * len(patients))
        times["Patient?identifier"] += _timed(client.get, by_id)
        times["Procedure?patient&_include"] += _timed(client.get, procs)
    base = statistics.median(times["healthz"])
    print(f"{sessions} sessions stored; {len(patients)} patients x {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| request | median ms | p95 ms | x /healthz |\n|---|---:|---:|---:|")
    for name, values in times.items():
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1]
        print(f"| {name} | {statistics.median(values):.2f} | {p95:.2f} | "
              f"{statistics.median(values) / base:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
