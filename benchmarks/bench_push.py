"""Benchmark: push_record against a raw HTTP replay of the same Bundles
(docs/performance.md#targets: >= 0.9x).

Usage: ``.venv/bin/python benchmarks/bench_push.py [BASE_URL] [N]``
(default ``$HAPI_BASE_URL`` or http://127.0.0.1:18080/fhir, N = 100 sessions per arm).

Needs a running FHIR server (``scripts/hapi start``). Records are the non-entered-in-error good
examples with fresh session ids, MRNs, clinics and NPIs per run. Four arms, measured in the same
run against the same server, alternating session by session so that warm-up, server growth and
the load of other processes on the machine hit them alike:

* ``push``   — ``push_record`` of fresh sessions (map + capability check + session lookup + one
  transaction; everything it does for a real push).
* ``raw``    — ``requests.post(base, json=bundle)`` of the same kind of fresh sessions' Bundles,
  pre-built outside the timing, with no check of any kind.
* ``repush`` — both again on sessions already on the server (push_record finds them unchanged
  after one lookup; the raw replay makes the server process the whole transaction again).

* ``dry-run`` / ``push-2`` — the dry run of fresh sessions (``sync.dryrun.dry_run``: the push's
  resolution plus one batched search per resource type, nothing written) against push_record of
  other fresh sessions; ``dry-run-v2`` / ``push-v2`` — the same for a changed version 2 of
  sessions already on the server (docs/targets.md#dry-run).

Prints sessions/s per arm and the ratios push/raw (first push: the binding target),
repush/raw-repush and the dry run's cost per session relative to a push.
"""

# ruff: noqa: T201 (a benchmark script: printing its numbers is its job)
from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_iastm.client import FhirClient  # noqa: E402
from fhir_iastm.mapping import MappingSettings, to_fhir  # noqa: E402
from fhir_iastm.records import load_record  # noqa: E402
from fhir_iastm.records.model import SessionRecord  # noqa: E402
from fhir_iastm.sync.dryrun import dry_run  # noqa: E402
from fhir_iastm.sync.push import push_record  # noqa: E402
from tests.strategies import random_npi as npi  # noqa: E402

EXAMPLES = sorted((ROOT / "tests/data/examples").glob("good-*.json"))
FHIR_JSON = "application/fhir+json"


def fresh_records(n: int) -> list[SessionRecord]:
    """N records with unique session ids; every 4 sessions share one patient/clinic/therapist."""
    sources = [json.loads(p.read_text()) for p in EXAMPLES]
    sources = [s for s in sources if s["status"] != "entered-in-error"]
    out = []
    for i in range(n):
        data = json.loads(json.dumps(sources[i % len(sources)]))
        tag = uuid.uuid4().hex[:10]
        group = i // 4
        data["session_id"] = f"B-{tag}"
        data["patient"]["mrn"] = f"MRN-{group}-{RUN}"
        data["clinic"]["clinic_id"] = f"CL-{RUN}"
        data["clinic"]["npi"] = CLINIC_NPI
        data["therapist"]["npi"] = THERAPIST_NPI
        out.append(load_record(data))
    return out


RUN = uuid.uuid4().hex[:8]
CLINIC_NPI, THERAPIST_NPI = npi(), npi()


Step = tuple[str, Callable[[], None]]


def alternate(pairs: list[tuple[Step, Step]], spent: dict[str, float]) -> None:
    """Run the two steps of each pair back to back, swapping their order every other pair, and
    add each step's wall time to its arm: load changes on the machine hit both arms alike."""
    for index, pair in enumerate(pairs):
        for label, step in pair if index % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            step()
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - started


def run(base: str, n: int) -> dict[str, float]:
    """sessions/s per arm over ``n`` sessions each, the arms alternating session by session."""
    settings = MappingSettings()
    client = FhirClient(base)
    raw = requests.Session()
    raw.headers.update({"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
    for record in fresh_records(4):  # JIT and caches of the server, capability check of the client
        push_record(client, record, settings=settings)
    mine, theirs = fresh_records(n), fresh_records(n)
    bundles = [to_fhir(r, settings) for r in theirs]  # pre-built: outside the timing
    statuses: list[str] = []

    def push(record: SessionRecord, expect: str) -> Callable[[], None]:
        return lambda: statuses.append(
            "ok" if push_record(client, record, settings=settings).status == expect else expect
        )

    def replay(bundle: dict[str, Any]) -> Callable[[], None]:
        return lambda: statuses.append(
            "ok" if raw.post(base, json=bundle, timeout=60).status_code == 200 else "raw"
        )

    spent: dict[str, float] = {}
    alternate(
        [
            (("push", push(r, "pushed")), ("raw", replay(b)))
            for r, b in zip(mine, bundles, strict=True)
        ],
        spent,
    )
    alternate(
        [
            (("repush", push(r, "unchanged")), ("raw-repush", replay(b)))
            for r, b in zip(mine, bundles, strict=True)
        ],
        spent,
    )
    plan = lambda r: lambda: statuses.append(  # noqa: E731
        "ok" if dry_run(client, r, settings=settings).status == "pushed" else "dry-run")
    alternate(
        [
            (("dry-run", plan(a)), ("push-2", push(b, "pushed")))
            for a, b in zip(fresh_records(n), fresh_records(n), strict=True)
        ],
        spent,
    )
    alternate(
        [
            (("dry-run-v2", plan(version_2(a))), ("push-v2", push(version_2(b), "pushed")))
            for a, b in zip(mine, theirs, strict=True)
        ],
        spent,
    )
    assert set(statuses) == {"ok"}, f"unexpected results: {sorted(set(statuses))}"
    return {label: n / seconds for label, seconds in spent.items()}


def version_2(record: SessionRecord) -> SessionRecord:
    """The record's version 2 with a changed note."""
    from dataclasses import replace

    return replace(record, record_version=record.record_version + 1, notes="benchmark v2")


def main() -> None:
    base = (
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("HAPI_BASE_URL", "http://127.0.0.1:18080/fhir")
    )
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    rates = run(base.rstrip("/"), n)
    for label, rate in rates.items():
        print(f"{label:>11}: {rate:7.1f} sessions/s")
    first = rates["push"] / rates["raw"]
    print(f"first push: push_record / raw replay = {first:.2f}x (target >= 0.9x)")
    print(f"re-push:    push_record / raw replay = {rates['repush'] / rates['raw-repush']:.2f}x")
    print(f"dry run, first push: cost per session = {rates['push-2'] / rates['dry-run']:.2f}x "
          "a push")
    print(f"dry run, version 2:  cost per session = {rates['push-v2'] / rates['dry-run-v2']:.2f}x "
          "a push")


if __name__ == "__main__":
    main()
