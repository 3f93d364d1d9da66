"""Benchmark: record -> FHIR mapping speed against the fhir.resources floor
(docs/performance.md#targets).

Usage: ``.venv/bin/python benchmarks/bench_mapping.py [N]`` (default N = 2000 sessions).

Maps N records (the 8 good examples with distinct session ids, cycled), then measures in the same
run the floor: one ``fhir.resources.R4B`` parse + serialize pass
(``Model.model_validate(d).model_dump(mode="json", exclude_none=True)``) over the same resources.
Prints sessions/s and resources/s for each, and the ratio map speed / floor speed (target >= 1.0).
With ``profiles/`` present it also times map + profile validation (``fhir_iastm.validation``,
structure=False: the mapper builds plain dicts, structure is checked once by the floor pass).
Times are process CPU time (``time.process_time``), so other load on the machine skews the
ratios less than wall-clock time would.
"""

# ruff: noqa: T201  -- a benchmark script reports on stdout
from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_iastm.mapping import MappingSettings, to_fhir  # noqa: E402
from fhir_iastm.records.model import SessionRecord  # noqa: E402
from fhir_iastm.records import load_record, record_hash  # noqa: E402


def records(n: int) -> list[SessionRecord]:
    """N valid records: the good examples with distinct session ids."""
    base = [
        load_record(json.loads(p.read_text()))
        for p in sorted((ROOT / "tests/data/examples").glob("good-*.json"))
    ]
    return [dataclasses.replace(base[i % len(base)], session_id=f"BENCH-{i:06d}") for i in range(n)]


def model_of(resource_type: str) -> Any:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def timed(label: str, seconds: float, sessions: int, resources: int) -> None:
    print(
        f"{label:<38} {seconds:8.3f} s  {sessions / seconds:9.0f} sessions/s  "
        f"{resources / seconds:9.0f} resources/s"
    )


def main(n: int) -> None:
    recs = records(n)
    to_fhir(recs[0])  # warm caches (code tables, imports)
    start = time.process_time()
    bundles = [to_fhir(r) for r in recs]
    t_map = time.process_time() - start
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    hashes = [MappingSettings(record_hash=record_hash(r)) for r in recs]
    start = time.process_time()
    for r, s in zip(recs, hashes, strict=True):
        to_fhir(r, s)
    t_map_hashed = time.process_time() - start
    models = {t: model_of(t) for t in {r["resourceType"] for r in resources}}
    start = time.process_time()
    for r in resources:
        models[r["resourceType"]].model_validate(r).model_dump(mode="json", exclude_none=True)
    t_floor = time.process_time() - start
    print(f"{n} sessions, {len(resources)} resources ({len(resources) / n:.1f} per session)")
    timed("map (to_fhir, dicts)", t_map, n, len(resources))
    timed("map, record hash precomputed", t_map_hashed, n, len(resources))
    timed("floor (R4B parse+serialize, 1 pass)", t_floor, n, len(resources))
    print(f"ratio map / floor speed: {t_floor / t_map:.2f}x  (target >= 1.0)")
    _validation(bundles, t_map, t_floor, n, len(resources))


def _validation(
    bundles: list[dict[str, Any]], t_map: float, t_floor: float, n: int, count: int
) -> None:
    try:
        from fhir_iastm.profiles import load_profiles
        from fhir_iastm.validation import validate
    except ImportError:
        print("profile validation not available: skipped")
        return
    index = load_profiles(ROOT / "profiles")
    validate(bundles[0], index, structure=False)
    start = time.process_time()
    for b in bundles:
        validate(b, index, structure=False)
    t_val = time.process_time() - start
    timed("profile validation (structure=False)", t_val, n, count)
    timed("map + profile validation", t_map + t_val, n, count)
    print(
        f"ratio (map + validate) / floor speed: {t_floor / (t_map + t_val):.2f}x  (target >= 1.0)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
