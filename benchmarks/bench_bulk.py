"""Benchmark: Bulk Data export and the SMART token endpoint (docs/smart-bulk.md).

Targets: a system-level export of 300,000 sessions on SQLite and PostgreSQL — wall time,
resources/s, export worker peak RSS < 200 MB, the web workers unaffected (the p99 of a patient
search while the export runs, against the same search before it); the token endpoint's p99 at 50
requests/s.

    .venv/bin/python benchmarks/bench_bulk.py [--sessions 3000] [--backends sqlite,postgresql]
                                              [--rate 20] [--token-rate 50] [--duration 10]

Per backend: a fresh store filled with ``gen_sessions`` records by ``fhir-iastm import``
(``bench_facade.import_store``); ``gunicorn --workers 2`` on it; the patient search at ``--rate``
(open loop, ``bench_api.drive``) as the baseline; then a system export queued and run by a
``fhir-iastm export-worker --once`` child (wall time, resources written, its peak RSS sampled
from ``/proc``) while the same search runs again. Then ``POST /auth/token`` at ``--token-rate``
with pre-signed ES384 assertions against ``GET /healthz`` at the same rate (the baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_api  # noqa: E402
from bench_api import HOST, Request, Result, drive, say, start_server, stop_server  # noqa: E402
from bench_export import _peak_kb  # noqa: E402
from bench_facade import database, import_store, patient_paths  # noqa: E402

from fhir_iastm.authz import Authorizer  # noqa: E402
from fhir_iastm.bulk_service import Exporter  # noqa: E402
from fhir_iastm.facade.export import ExportRequest  # noqa: E402
from fhir_iastm.smart.assertion import ASSERTION_TYPE, sign_assertion  # noqa: E402
from fhir_iastm.storage import Store  # noqa: E402

KEYS = ROOT / "tests" / "data" / "smart"


def p99(result: Result) -> float:
    """p99 latency, ms."""
    return result.pct(99)


def export_while_searching(url: str, folder: Path, port: int, paths: list[str],
                           args: argparse.Namespace) -> dict[str, Any]:
    """Run a queued system export in a worker child while the search runs at ``args.rate``."""
    store = Store(url)
    exporter = Exporter(store, folder / "exports")
    request = ExportRequest("system", types=tuple(args.types.split(","))) if args.types \
        else ExportRequest("system")
    job = exporter.kick_off(request, owner="bench", request_url="bench",
                            base_url="http://bench/fhir", requires_token=False)
    assert job is not None
    env = dict(os.environ, DATABASE_URL=url, IASTM_EXPORT_DIR=str(folder / "exports"))
    env.pop("IASTM_DATABASE_URL", None)
    started = time.perf_counter()
    niceness = args.export_nice
    proc = subprocess.Popen([str(ROOT / ".venv/bin/fhir-iastm"), "export-worker", "--once"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=(lambda: os.nice(niceness)) if niceness else None)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _peak_kb(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    during: list[Result] = []
    while proc.poll() is None:  # keep the search running for as long as the export does
        n = max(1, int(args.rate * 2))
        during.append(drive(port, "search during export",
                            [("GET", paths[i % len(paths)], None) for i in range(n)],
                            args.rate, (200,)))
    proc.wait()
    wall = time.perf_counter() - started
    sampler.join()
    done = exporter.jobs.get(job.id)
    store.close()
    if done is None or done.manifest is None:
        raise SystemExit(f"the export did not finish: {done}")
    count = sum(o["count"] for o in done.manifest["output"])
    types: dict[str, int] = {}
    for o in done.manifest["output"]:
        types[o["type"]] = types.get(o["type"], 0) + o["count"]
    merged = Result("search during export", args.rate,
                    [x for r in during for x in r.latencies])
    return {"wall_s": wall, "resources": count, "resources_per_s": count / wall, "types": types,
            "worker_peak_mb": peak[0] / 1024, "search_p99_during_ms": p99(merged)}


def bench_export(backend: str, args: argparse.Namespace) -> None:
    if args.store:  # a store filled earlier (gen_sessions.py --run BB | fhir-iastm import)
        with tempfile.TemporaryDirectory() as tmp:
            run_export(backend, args.store, Path(tmp), args)
        return
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp), args.sessions) as url:
        folder = Path(tmp)
        rate, cpu_ms, _ = import_store(url, folder, args.sessions, args.run, 0)
        say(f"{backend}: stored {args.sessions} sessions ({rate:.0f}/s, {cpu_ms:.1f} ms CPU each)")
        run_export(backend, url, folder, args)


def run_export(backend: str, url: str, folder: Path, args: argparse.Namespace) -> None:
    """The search baseline, then the export while the search runs (``url``: a filled store)."""
    proc, port = start_server(folder, 2, 0, url)
    try:
        paths = patient_paths(port, args.run, args.sessions)
        n = int(args.rate * args.duration)
        before = drive(port, "search", [("GET", paths[i % len(paths)], None)
                                        for i in range(n)], args.rate, (200,))
        figures = export_while_searching(url, folder, port, paths, args)
    finally:
        stop_server(proc)
    say(f"{backend}: per type {figures['types']}")
    say(f"{backend}: export of {args.sessions} sessions: {figures['resources']:.0f} resources in "
        f"{figures['wall_s']:.1f} s = {figures['resources_per_s']:.0f} resources/s; worker peak "
        f"RSS {figures['worker_peak_mb']:.0f} MB")
    ratio = figures["search_p99_during_ms"] / max(p99(before), 1e-3)
    say(f"{backend}: patient search p99 {p99(before):.1f} ms before, "
        f"{figures['search_p99_during_ms']:.1f} ms during the export (x{ratio:.2f})")


def _form_send(port: int, req: Request, timeout: float = 30.0) -> tuple[int, bytes]:
    """bench_api.send with a form body (the token endpoint's content type)."""
    import http.client

    method, path, body = req
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def bench_token(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder}/bench.db"
        store = Store(url)
        store.migrate()
        public = (KEYS / "ES384.public.json").read_text()
        client_id = Authorizer(store).add_client("bench", "system/*.rs", jwks_text=public).client_id
        store.close()
        os.environ["IASTM_SMART_AUTH"] = "true"
        try:
            proc, port = start_server(folder, 2, 0, url)
        finally:
            os.environ.pop("IASTM_SMART_AUTH", None)
        private = json.loads((KEYS / "ES384.private.json").read_text())["keys"][0]
        token_url = f"http://{HOST}:{port}/auth/token"
        n = int(args.token_rate * args.duration)

        def forms(count: int) -> list[Request]:
            out = []
            for _ in range(count):
                assertion = sign_assertion(private, client_id=client_id, token_url=token_url,
                                           now=int(time.time()) + 30, jti=uuid.uuid4().hex)
                body = urllib.parse.urlencode({
                    "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion, "scope": "system/*.rs"}).encode()
                out.append(("POST", "/auth/token", body))
            return out

        try:
            cpu = bench_api.server_cpu(proc.pid)
            health = drive(port, "healthz", [("GET", "/healthz", None)] * n, args.token_rate,
                           (200,))
            health.server_cpu = bench_api.server_cpu(proc.pid) - cpu
            bench_api.send = _form_send  # drive() sends through bench_api.send
            cpu = bench_api.server_cpu(proc.pid)
            tokens = drive(port, "token", forms(n), args.token_rate, (200,))
            tokens.server_cpu = bench_api.server_cpu(proc.pid) - cpu
        finally:
            stop_server(proc)
    say(health.row(None))
    say(tokens.row(p99(health)))
    if tokens.errors:
        say(f"    errors: {tokens.errors}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--store", default=None, help="export this filled store (SQLAlchemy URL "
                        "of one backend, --sessions its size) instead of building one")
    parser.add_argument("--run", default="BB", help="gen_sessions run id of a --store's records "
                        "(its patients are searched)")
    parser.add_argument("--types", default=None, help="_type of the export (default: all, "
                        "with Provenance)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rate", type=float, default=20.0, help="patient searches/s")
    parser.add_argument("--token-rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--export-nice", type=int, default=0,
                        help="run the export worker at this niceness (the web workers at 0)")
    parser.add_argument("--only", default="export,token")
    args = parser.parse_args(argv)
    say(f"load average at start: {os.getloadavg()[0]:.1f}")
    if "export" in args.only:
        for backend in args.backends.split(","):
            bench_export(backend, args)
    if "token" in args.only:
        bench_token(args)
    say(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
