"""Benchmark: the readiness check's wall time against a FHIR server
(docs/targets.md#readiness-check).

Usage: ``.venv/bin/python benchmarks/bench_check_server.py [BASE_URL] [N]``
(default ``$HAPI_BASE_URL`` or http://127.0.0.1:18080/fhir, N = 10 runs per arm).

Arms, alternating run by run in the same process: ``read-only`` (``service.check_server``: metadata,
one search, the profile lookup) and ``probe-writes`` (plus the probe Basic's two conditional
creates, a conditional update, a stale If-Match and the delete); baseline ``metadata`` — one
``GET /metadata`` by a fresh client, the least any check must do. Each run uses a fresh client
(nothing cached). Prints the median wall time per arm and its ratio to the baseline.
"""

# ruff: noqa: T201 (a benchmark script: printing its numbers is its job)
from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_iastm.client import FhirClient  # noqa: E402
from fhir_iastm.service import check_server  # noqa: E402

BASE = "https://iastm.example.org/fhir"


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "HAPI_BASE_URL", "http://127.0.0.1:18080/fhir")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    arms: dict[str, Callable[[], object]] = {
        "metadata": lambda: FhirClient(url).capabilities(),
        "read-only": lambda: check_server(FhirClient(url), profiles=ROOT / "profiles",
                                          canonical_base=BASE),
        "probe-writes": lambda: check_server(FhirClient(url), profiles=ROOT / "profiles",
                                             canonical_base=BASE, probe_writes=True),
    }
    for step in arms.values():  # warm-up: imports, profile index, server JIT
        step()
    spent: dict[str, list[float]] = {name: [] for name in arms}
    for index in range(n):
        order = list(arms.items()) if index % 2 == 0 else list(arms.items())[::-1]
        for name, step in order:
            spent[name].append(timed(step))
    floor = statistics.median(spent["metadata"])
    for name, times in spent.items():
        median = statistics.median(times)
        print(f"{name:>13}: median {median * 1000:7.1f} ms  ({median / floor:5.1f}x metadata)")


if __name__ == "__main__":
    main()
