"""Benchmark: offline profile validation vs the fhir.resources parse+serialize floor
(docs/performance.md#targets).

Run: ``.venv/bin/python benchmarks/bench_validation.py [--rounds N]``. Everything is measured in
this one run on the same resources (the Bundles mapped from tests/data/examples/good-*.json):

* floor            — one fhir.resources R4B pass per resource: model_validate + model_dump
* validate (full)  — structural (by the R4 4.0.1 definitions) + profile validation
* validate (profile) — without the R4 shape checks (``structure=False``: resources built by the
  mapper; core bindings and invariants still run)
* map+validate     — ``to_fhir(record)`` + profile validation of the Bundle, sessions/s

Ratios > 1 mean faster than the floor (wall time; ``_cpu``: this process's CPU time, each
workload's best round). Profiles are compiled once, before timing.
With ``--cli N`` it also times, end to end, ``fhir-iastm validate`` on a JSON Lines file of N
mapped Bundles against a floor process that reads the same file and makes the one fhir.resources
pass over every resource (both include interpreter start-up and imports).
With ``--hapi BASE_URL`` (a running HAPI R4 server) it also uploads profiles/ there and times
``$validate`` of the first ``--hapi-sample`` resources: ours vs HAPI, resources/s
(docs/performance.md#targets).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir.resources.R4B import get_fhir_model_class  # noqa: E402

from fhir_iastm.mapping import to_fhir  # noqa: E402
from fhir_iastm.profiles import load_profiles  # noqa: E402
from fhir_iastm.records import load_record  # noqa: E402
from fhir_iastm.validation import validate  # noqa: E402


def best_of(rounds: int, work: Callable[[], int]) -> tuple[float, int]:
    """(best seconds, items) over ``rounds`` runs of ``work`` (returns how many items it did)."""
    best, items = float("inf"), 0
    for _ in range(rounds):
        start = time.perf_counter()
        items = work()
        best = min(best, time.perf_counter() - start)
    return best, items


def hapi_report(base_url: str, sample: list[dict[str, Any]], ours: float) -> dict[str, Any]:
    """Upload profiles/ to the server, then time its $validate on ``sample`` (one warm-up)."""
    from fhir_iastm.client import FhirClient
    from fhir_iastm.service import upload_profiles

    client = FhirClient(base_url, timeout=(5, 300))
    upload_profiles(client, ROOT / "profiles")
    client.validate(sample[0])
    start = time.perf_counter()
    for res in sample:
        client.validate(res)
    hapi = len(sample) / (time.perf_counter() - start)
    return {
        "hapi_validate_resources_per_s": round(hapi, 1),
        "ratio_validate_full_vs_hapi": round(ours / hapi, 1),
    }


FLOOR_SCRIPT = """
import json, sys
from fhir.resources.R4B import get_fhir_model_class
with open(sys.argv[1], encoding="utf-8") as stream:
    for line in stream:
        for entry in json.loads(line)["entry"]:
            res = entry["resource"]
            get_fhir_model_class(res["resourceType"]).model_validate(res).model_dump(
                mode="json", exclude_none=True
            )
"""


def cli_report(bundles: list[dict[str, Any]], count: int, rounds: int) -> dict[str, Any]:
    """End to end: ``fhir-iastm validate FILE`` vs the floor process, on ``count`` Bundles."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bundles.ndjson"
        with path.open("w", encoding="utf-8") as out:
            for i in range(count):
                out.write(json.dumps(bundles[i % len(bundles)]) + "\n")
        timings: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for _ in range(rounds):  # alternated, best of ``rounds`` each (shared machine)
            for name, argv in (
                ("floor", [sys.executable, "-c", FLOOR_SCRIPT, str(path)]),
                ("cli_validate", [sys.executable, "-m", "fhir_iastm", "validate", str(path)]),
            ):
                used = _children_cpu()
                start = time.perf_counter()
                done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
                elapsed = time.perf_counter() - start
                timings[name] = min(timings.get(name, elapsed), elapsed)
                spent = _children_cpu() - used
                cpu[name] = min(cpu.get(name, spent), spent)
                if done.returncode not in (0, 1):  # 1: issues found (dom-6 is a warning only)
                    raise SystemExit(f"{name} exited {done.returncode}")
    return {
        "cli_bundles": count,
        "cli_floor_s": round(timings["floor"], 1),
        "cli_validate_s": round(timings["cli_validate"], 1),
        "ratio_cli_validate_vs_floor": round(timings["floor"] / timings["cli_validate"], 2),
        "cli_floor_cpu_s": round(cpu["floor"], 1),
        "cli_validate_cpu_s": round(cpu["cli_validate"], 1),
        "ratio_cli_validate_vs_floor_cpu": round(cpu["floor"] / cpu["cli_validate"], 2),
    }


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far (less moved by the
    machine's load than wall time: what the process itself computed)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20, help="copies of the example set")
    parser.add_argument("--hapi", default=None, help="base URL of a HAPI R4 server to compare")
    parser.add_argument("--hapi-sample", type=int, default=40)
    parser.add_argument("--cli", type=int, default=0, help="Bundles for the end-to-end CLI run")
    parser.add_argument("--cli-rounds", type=int, default=2)
    args = parser.parse_args()

    index = load_profiles(ROOT / "profiles")
    examples = sorted((ROOT / "tests" / "data" / "examples").glob("good-*.json"))
    records = [load_record(json.loads(p.read_text())) for p in examples] * args.repeat
    bundles = [to_fhir(r) for r in records]
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    per_session = len(resources) / len(bundles)

    def floor() -> int:
        for res in resources:
            get_fhir_model_class(res["resourceType"]).model_validate(res).model_dump(
                mode="json", exclude_none=True
            )
        return len(resources)

    def full() -> int:
        for res in resources:
            validate(res, index)
        return len(resources)

    def profile_only() -> int:
        for res in resources:
            validate(res, index, structure=False)
        return len(resources)

    def map_validate() -> int:
        for record in records:
            issues = validate(to_fhir(record), index, structure=False)
            if any(i.is_error for i in issues):
                raise SystemExit(f"unexpected error on {record.session_id}: {issues}")
        return len(records)

    def map_only() -> int:
        for record in records:
            to_fhir(record)
        return len(records)

    # rounds interleave the workloads, so that each ratio compares runs made under the same
    # machine load (the machine is shared); each row keeps its best round
    # (and the CPU time of this process, less moved by the neighbours than wall time)
    rows: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, work in (
            ("floor", floor),
            ("validate_full", full),
            ("validate_profile", profile_only),
            ("map_only", map_only),
            ("map_validate", map_validate),
        ):
            used = time.process_time()
            seconds, items = best_of(1, work)
            cpu[name] = max(cpu.get(name, 0.0), items / (time.process_time() - used))
            rows[name] = max(rows.get(name, 0.0), items / seconds)
    floor_sessions = rows["floor"] / per_session
    report: dict[str, Any] = {
        "resources": len(resources),
        "sessions": len(records),
        "resources_per_session": round(per_session, 2),
        "floor_resources_per_s": round(rows["floor"]),
        "validate_full_resources_per_s": round(rows["validate_full"]),
        "validate_profile_resources_per_s": round(rows["validate_profile"]),
        "floor_sessions_per_s": round(floor_sessions),
        "map_only_sessions_per_s": round(rows["map_only"]),
        "map_validate_sessions_per_s": round(rows["map_validate"]),
        "ratio_validate_full_vs_floor": round(rows["validate_full"] / rows["floor"], 2),
        "ratio_validate_full_vs_floor_cpu": round(cpu["validate_full"] / cpu["floor"], 2),
        "ratio_validate_profile_vs_floor": round(rows["validate_profile"] / rows["floor"], 2),
        "ratio_map_validate_vs_floor": round(rows["map_validate"] / floor_sessions, 2),
    }
    if args.cli:
        report.update(cli_report(bundles, args.cli, args.cli_rounds))
    if args.hapi:
        report.update(hapi_report(args.hapi, resources[: args.hapi_sample], rows["validate_full"]))
    print(json.dumps(report, indent=2))  # noqa: T201 - a benchmark script prints its report
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
