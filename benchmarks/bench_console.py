"""The clinic console's server time at store scale (docs/console.md, issue 14 targets).

    .venv/bin/python benchmarks/bench_console.py [--sessions 300000] [--database FILE]
                                                 [--database-url URL] [--repeat 20]

Builds (or reuses: ``--database`` kept between runs) a store of ``--sessions`` records from
``gen_sessions.records`` (10 sessions per patient, 20 clinics, 200 therapists) plus one patient
with 20 sessions, written straight into the store's tables in bulk (records, their versions and
sync states; no FHIR resources: the console's pages do not read them). Sync states are spread
like a working clinic: ~96 % pushed, ~3 % queued, ~1 % dead letters.

Then, in-process through Flask's test client (server time, no network), each page ``--repeat``
times: the sessions list unfiltered, filtered by clinic, therapist, patient, date range, status,
sync state, its second page (keyset cursor), and the course page of the 20-session patient.
Printed: median and p95 in ms and each as a ratio of ``/healthz`` in the same run (the floor of
a request through the app). Targets: list < 200 ms, course < 100 ms. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gen_sessions import records  # noqa: E402 — a sibling script
from sqlalchemy import func, insert, select  # noqa: E402

from fhir_iastm.api import create_app  # noqa: E402
from fhir_iastm.config import Settings  # noqa: E402
from fhir_iastm.records import record_hash  # noqa: E402
from fhir_iastm.storage import Store  # noqa: E402
from fhir_iastm.storage.schema import record_versions, sync_state  # noqa: E402
from fhir_iastm.storage.schema import records as records_table  # noqa: E402
from tests.console.seed import course_dicts  # noqa: E402

COURSE_MRN = "MRN-BENCH-COURSE"
BATCH = 5000


def _rows(raw: dict[str, Any], now: datetime, rnd: random.Random) -> tuple[dict[str, Any], ...]:
    sid = raw["session_id"]
    digest = record_hash(raw)
    record = {"session_id": sid, "record_version": raw["record_version"], "record_hash": digest,
              "status": raw["status"], "clinic_id": raw["clinic"]["clinic_id"],
              "patient_mrn": raw["patient"]["mrn"], "therapist_npi": raw["therapist"]["npi"],
              "session_start": raw["session"]["start"], "created_at": now, "updated_at": now,
              "indexed_version": None}
    version = {"session_id": sid, "record_version": raw["record_version"], "record_hash": digest,
               "body": raw, "received_at": now, "actor": "bench"}
    draw = rnd.random()
    state = "dead-letter" if draw < 0.01 else "queued" if draw < 0.04 else "pushed"
    sync = {"session_id": sid, "state": state, "attempts": 0, "updated_at": now,
            "pushed_version": raw["record_version"] if state == "pushed" else None,
            "last_error_code": "E_PUSH_REJECTED" if state == "dead-letter" else None}
    return record, version, sync


def build(store: Store, n: int) -> float:
    """Write ``n`` generated records and the course patient's 20; returns seconds taken."""
    began = time.perf_counter()
    rnd = random.Random(14)
    now = datetime.now(UTC)
    course = course_dicts(COURSE_MRN, 20, planned=24, prefix="BENCH", cancelled=(7,),
                          bruising=(1, 2, 5))
    stream = list(course)
    batch: list[tuple[dict[str, Any], ...]] = []

    def flush() -> None:
        with store.write() as conn:
            conn.execute(insert(records_table), [b[0] for b in batch])
            conn.execute(insert(record_versions), [b[1] for b in batch])
            conn.execute(insert(sync_state), [b[2] for b in batch])
        batch.clear()

    for i, raw in enumerate([*stream, *records(n, "con")]):
        batch.append(_rows(raw, now - timedelta(seconds=i), rnd))
        if len(batch) >= BATCH:
            flush()
            print(f"  {i + 1} records", end="\r", file=sys.stderr)
    if batch:
        flush()
    return time.perf_counter() - began


def timed(client: Any, url: str, repeat: int) -> list[float]:
    out = []
    client.get(url)  # warm: templates compiled, caches filled
    for _ in range(repeat):
        began = time.perf_counter()
        answer = client.get(url)
        out.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, (url, answer.status_code)
    return out


def report(name: str, ms: list[float], floor: float, target: float | None) -> None:
    median = statistics.median(ms)
    p95 = sorted(ms)[max(0, int(len(ms) * 0.95) - 1)]
    goal = f"  target < {target:.0f} ms: {'met' if p95 < target else 'MISSED'}" if target else ""
    print(f"{name:<44} median {median:8.1f} ms  p95 {p95:8.1f} ms  "
          f"x{median / floor:7.1f} of /healthz{goal}")


def pages(client: Any, store: Store) -> list[tuple[str, str, float | None]]:
    first = client.get("/console/sessions").get_data(as_text=True)
    after = first.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    with store.read() as conn:
        clinic, therapist, mrn = conn.execute(
            select(records_table.c.clinic_id, records_table.c.therapist_npi,
                   records_table.c.patient_mrn).where(records_table.c.patient_mrn != COURSE_MRN)
            .limit(1)).one()
    return [
        ("sessions, no filter", "/console/sessions", 200),
        ("sessions, page 2 (keyset)", after, 200),
        ("sessions, clinic", f"/console/sessions?clinic={clinic}", 200),
        ("sessions, therapist", f"/console/sessions?therapist={therapist}", 200),
        ("sessions, patient", f"/console/sessions?patient={mrn}", 200),
        ("sessions, one month", "/console/sessions?from=2026-03-01&to=2026-03-31", 200),
        ("sessions, status cancelled", "/console/sessions?status=cancelled", 200),
        ("sessions, sync dead-letter", "/console/sessions?sync=dead-letter", 200),
        ("sessions, sync pushed", "/console/sessions?sync=pushed", 200),
        ("sessions, clinic + sync queued", f"/console/sessions?clinic={clinic}&sync=queued", 200),
        ("sessions, therapist + sync dead-letter",
         f"/console/sessions?therapist={therapist}&sync=dead-letter", 200),
        ("course of care, 20 sessions", f"/console/patients/{COURSE_MRN}/course", 100),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=300_000)
    parser.add_argument("--database", type=Path, help="SQLite file, kept and reused")
    parser.add_argument("--database-url", help="a scratch database URL instead (e.g. PostgreSQL)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-console-")
    url = args.database_url or f"sqlite:///{args.database or Path(folder) / 'console.db'}"
    store = Store(url)
    store.migrate()
    with store.read() as conn:
        have = conn.execute(select(func.count()).select_from(records_table)).scalar_one()
    if have == 0:
        took = build(store, args.sessions)
        print(f"built {args.sessions + 20} sessions in {took:.0f} s", file=sys.stderr)
    else:
        print(f"reusing the store's {have} sessions", file=sys.stderr)
    store.close()
    app = create_app(Settings.from_env({"IASTM_DATABASE_URL": url}))
    logging.getLogger("fhir_iastm.access").setLevel(logging.WARNING)  # one line per request
    client = app.test_client()
    with app.extensions["fhir_iastm"].store.read() as conn:
        total = conn.execute(select(func.count()).select_from(records_table)).scalar_one()
    floor = statistics.median(timed(client, "/healthz", args.repeat))
    print(f"store: {url.split('://')[0]}, {total} sessions; /healthz median {floor:.2f} ms")
    for name, page, target in pages(client, app.extensions["fhir_iastm"].store):
        report(name, timed(client, page, args.repeat), floor, target)
    app.extensions["fhir_iastm"].store.close()


if __name__ == "__main__":
    main()
