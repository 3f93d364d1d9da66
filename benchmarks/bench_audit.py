"""What the AuditEvents cost a read: the same reads and searches with and without them.

    .venv/bin/python benchmarks/bench_audit.py [--reads 2000] [--database sqlite|URL]

One app on a fresh store holding the good examples (static tokens, so each event has an agent);
alternating rounds of ``GET /fhir/Patient/<id>`` and ``GET /fhir/Observation?subject=…`` through
the Flask test client, once with the AuditEvent hook and once with it taken out, then a flush of
the writer (its batches are stored by a thread, off the request path). Prints the median and
p95 per request of each and their ratio, and the events stored.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from fhir_iastm.api import create_app  # noqa: E402
from fhir_iastm.api.audit import record_access  # noqa: E402
from fhir_iastm.config import Settings  # noqa: E402
from fhir_iastm.storage.schema import audit_event  # noqa: E402
from tests.strategies import example  # noqa: E402

NAMES = ["good-01", "good-02", "good-03", "good-04", "good-05", "good-06", "good-08"]
AUTH = {"Authorization": "Bearer bench"}


def timings(client: Any, urls: list[str], rounds: int) -> list[float]:
    out = []
    for i in range(rounds):
        url = urls[i % len(urls)]
        start = time.perf_counter()
        response = client.get(url, headers=AUTH)
        out.append(time.perf_counter() - start)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--database", default="sqlite")
    args = parser.parse_args()
    url = (f"sqlite:///{tempfile.mkdtemp(prefix='bench-audit-')}/db.sqlite"
           if args.database == "sqlite" else args.database)
    app = create_app(Settings.from_env({"IASTM_DATABASE_URL": url,
                                        "IASTM_API_TOKENS": "bench:read+write+admin"}))
    client = app.test_client()
    for name in NAMES:
        assert client.post("/api/sessions", json=example(name), headers=AUTH).status_code == 201
    patients = client.get("/fhir/Patient", headers=AUTH).get_json()["entry"]
    urls = []
    for entry in patients:
        pid = entry["resource"]["id"]
        urls += [f"/fhir/Patient/{pid}", f"/fhir/Observation?subject=Patient/{pid}"]
    hooks = app.after_request_funcs[None]
    results: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(4):  # alternate, so load changes hit both alike
        for mode in ("without", "with"):
            if mode == "with" and record_access not in hooks:
                hooks.append(record_access)
            if mode == "without" and record_access in hooks:
                hooks.remove(record_access)
            results[mode] += timings(client, urls, args.reads // 4)
    state = app.extensions["fhir_iastm"]
    state.audit.flush()
    with state.store.read() as conn:
        stored = conn.execute(select(func.count()).select_from(audit_event)).scalar()
    summary = {}
    for mode, values in results.items():
        values.sort()
        summary[mode] = {"median_ms": round(statistics.median(values) * 1000, 3),
                         "p95_ms": round(values[int(len(values) * 0.95)] * 1000, 3)}
    print(json.dumps({"reads": args.reads, "database": args.database.split(":")[0], **summary,
                      "events_stored": stored}))
    print(f"AuditEvents: median {summary['with']['median_ms']} ms per read with, "
          f"{summary['without']['median_ms']} ms without (ratio "
          f"{summary['with']['median_ms'] / summary['without']['median_ms']:.2f}); p95 ratio "
          f"{summary['with']['p95_ms'] / summary['without']['p95_ms']:.2f}")
    state.store.close()


if __name__ == "__main__":
    main()
