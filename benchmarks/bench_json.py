"""What orjson saves: the JSON encodings alone, and ``POST /api/sessions`` with it on and off.

    .venv/bin/python benchmarks/bench_json.py [--records 300] [--posts 1000]

1. The resources of ``--records`` generated sessions encoded as the store does (sorted keys for
   the content hash, compact for the body), by ``json`` and by ``fhir_iastm.jsonfast``: CPU ms
   per record, best of 5.
2. ``--posts`` requests ``POST /api/sessions`` through Flask's test client (in process, SQLite
   file), one with orjson on and the next off (``jsonfast._ENABLED`` false and the resource
   bodies left dicts that the JSON column encodes: the code before orjson, writing the same
   bytes), so that both see the same load and the same growing store: the CPU time of the
   requesting thread (``time.thread_time``) per request, mean and median of each side.

Numbers, not assertions; the load average is printed next to them (CPU time, not wall time,
is the fair measure on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import fhir_iastm.jsonfast as jsonfast  # first: gen_sessions puts this checkout on sys.path
from fhir_iastm.config import Settings
from fhir_iastm.facade import extract
from fhir_iastm.facade.resources import stored_resources
from fhir_iastm.mapping import to_fhir
from fhir_iastm.records import check_record, record_hash
from fhir_iastm.service import mapping_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_sessions import records  # noqa: E402 — a sibling script


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def encodings(count: int, run: str) -> None:
    settings = mapping_settings(Settings())
    found = []
    for body in records(count, run):
        record = check_record(body)[0]
        assert record is not None
        bundle = to_fhir(record, replace(settings, record_hash=record_hash(record)))
        found.append(stored_resources(bundle, copy_=False))
    std_sorted = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                  check_circular=False)
    std_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                   check_circular=False)

    def best(work: Any) -> float:
        times = []
        for _ in range(5):
            start = cpu()
            for resources in found:
                for item in resources:
                    work(item)
            times.append(cpu() - start)
        return min(times) / len(found) * 1000

    base = best(lambda r: (std_sorted.encode(r).encode(), std_compact.encode(r)))
    fast = best(jsonfast.dumps_pair)
    print(f"sorted + compact of each resource: json {base:.3f} ms/record, "
          f"jsonfast {fast:.3f} ms/record ({fast / base:.2f}x)")


def _sorted_only(value: Any) -> tuple[bytes, Any]:
    return jsonfast.dumps_sorted(value), value


def _as_is(value: Any) -> Any:
    return value


def posts(count: int, run: str) -> None:
    from fhir_iastm.api import create_app

    folder = tempfile.mkdtemp()
    app = create_app(Settings.from_env({"IASTM_DATABASE_URL": f"sqlite:///{folder}/post.db",
                                        "IASTM_API_TOKENS": "bench:read+write"}))
    client = app.test_client()
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    sent = [json.dumps(b).encode() for b in records(count + 100, run)]
    side: dict[bool, list[float]] = {True: [], False: []}
    pair, text = extract.dumps_pair, extract.JsonText
    for k, body in enumerate(sent):
        enabled = k % 2 == 0
        jsonfast._ENABLED = enabled
        # off: as before orjson, the content hash's text only and the body left a dict that
        # the JSON column encodes when (and if) it is written
        extract.dumps_pair = pair if enabled else _sorted_only  # type: ignore[assignment]
        extract.JsonText = text if enabled else _as_is  # type: ignore[misc, assignment]
        start = time.thread_time()
        answer = client.post("/api/sessions", data=body, headers=headers)
        used = time.thread_time() - start
        if answer.status_code != 201:
            raise SystemExit(f"POST answered {answer.status_code}: {answer.data[:300]!r}")
        if k >= 100:  # the first 100 warm up
            side[enabled].append(used * 1000)
    jsonfast._ENABLED, extract.dumps_pair = True, pair
    extract.JsonText = text  # type: ignore[misc]
    on, off = statistics.mean(side[True]), statistics.mean(side[False])
    print(f"POST /api/sessions, {count} requests alternately with orjson on and off, CPU ms of "
          f"the request's thread: mean on {on:.3f}, off {off:.3f}, saved {off - on:.3f} "
          f"({on / off:.3f}x); median on {statistics.median(side[True]):.3f}, "
          f"off {statistics.median(side[False]):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--posts", type=int, default=1000)
    args = parser.parse_args()
    run = f"J{time.time_ns() % 10**7}"
    print(f"orjson usable: {jsonfast._ENABLED}, load {os.getloadavg()[0]:.1f}")
    encodings(args.records, run)
    logging.disable(logging.INFO)  # one access-log line per request otherwise
    posts(args.posts, run + "P")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
