"""The FHIR facade at store scale (issue 9): first search, memory, patient search under mixed load,
POST latency, import rate — on SQLite and PostgreSQL, at several store sizes.

    .venv/bin/python benchmarks/bench_facade.py [--sizes 3000,30000] [--backends sqlite,postgresql]
        [--duration 20] [--warmup 2] [--searches 10000] [--workers 2] [--nice N] [--keep]

For each backend and size: a fresh database (SQLite in a temporary folder; PostgreSQL: a new
database ``bench_facade_<pid>_<size>`` created on ``$BENCH_DATABASE_URL`` or the URL in
``/tmp/shared_pg_url``, dropped at the end), ``size`` sessions from ``gen_sessions.py`` (10 per
patient, 20 clinics) stored by ``fhir-iastm import`` (timed: the import rate), then
gunicorn on it as it is served (``bench_api.start_server``: ``fhir_iastm/gunicorn_conf.py``,
``--workers 2``) and, in order:

* first searches: the first ``Patient?identifier=`` on each fresh worker, after ``/healthz``;
* worker RSS (``/proc/<pid>/status`` VmRSS) before and after ``--searches`` patient searches;
* at fixed rates with ``bench_api``'s open-loop generator (latency from each request's scheduled
  time): ``GET /healthz`` at 200/s (the baseline of this run), the patient search at 200/s,
  ``POST /api/sessions`` at 200/s, and the mixed load: the patient search at 200/s with 150 POST/s
  (350 requests/s in all; the GET and POST rows split).

The patient search is what an EHR sends: ``Patient?identifier=<system>|<mrn>`` and
``Procedure?patient=<id>&_include=Procedure:patient`` (ids looked up before the runs), alternating
over 200 patients. Prints one table per store and, at the end, how each figure grows from the
smallest to the largest store. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import (  # noqa: E402 — a sibling script
    HEADER,
    ROOT,
    Request,
    Result,
    interleave,
    say,
    scenario,
    send,
    start_server,
    stop_server,
)
from gen_sessions import mrn, mrn_system, records  # noqa: E402

CHUNK = 10_000  # records per import file (the import reads a whole file at once)
SAMPLE_PATIENTS = 200


@contextmanager
def database(backend: str, folder: Path, size: int) -> Iterator[str]:
    """A fresh, empty database URL for one store."""
    if backend == "sqlite":
        yield f"sqlite:///{folder}/facade-{size}.db"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = os.environ.get("BENCH_DATABASE_URL") or Path("/tmp/shared_pg_url").read_text().strip()
    name = f"bench_facade_{os.getpid()}_{size}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def kept_database(backend: str, data: Path, name: str) -> Iterator[str]:
    """A store kept between runs (``--data``): the SQLite file ``<data>/<name>.db`` or the
    PostgreSQL database ``<name>`` (created when missing, never dropped)."""
    if backend == "sqlite":
        yield f"sqlite:///{data}/{name}.db"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = os.environ.get("BENCH_DATABASE_URL") or Path("/tmp/shared_pg_url").read_text().strip()
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                            {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    yield make_url(base).set(database=name).render_as_string(hide_password=False)


def stored_sessions(url: str, run: str) -> int:
    """How many of the generated sessions ``0 .. n-1`` of ``run`` a kept store holds (the
    POSTed ones are numbered from 1,000,000 up and not counted)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM records WHERE session_id >= :lo AND session_id < :hi"),
                {"lo": f"BS-{run}-0", "hi": f"BS-{run}-1"}).scalar() or 0)
    except Exception:  # noqa: BLE001 — no schema yet
        return 0
    finally:
        engine.dispose()


def import_store(url: str, folder: Path, size: int, run: str, nice: int,
                 first: int = 0, budget: float | None = None) -> tuple[float, float, int]:
    """Write sessions ``first .. size-1`` as JSON Lines files, ``fhir-iastm import`` them:
    (sessions/s, CPU ms per session of the import process, sessions imported). ``budget``:
    stop after the file during which that many seconds passed (the store is resumable)."""
    cli = str(ROOT / ".venv/bin/fhir-iastm")
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run([cli, "init-db"], env=env, check=True, capture_output=True)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, done_n = time.perf_counter(), 0
    for start in range(first, size, CHUNK):
        n = min(CHUNK, size - start)
        _import_chunk(cli, env, folder, run, start, n, nice)
        done_n += n
        say(f"  imported {start + n:,} of {size:,} sessions "
            f"({done_n / (time.perf_counter() - started):.0f}/s)")
        if budget is not None and time.perf_counter() - started > budget:
            break
    elapsed = time.perf_counter() - started
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_ms = (done.ru_utime + done.ru_stime - cpu.ru_utime - cpu.ru_stime) * 1000 / max(1, done_n)
    return done_n / elapsed, cpu_ms, done_n


def _import_chunk(cli: str, env: dict[str, str], folder: Path, run: str, start: int, n: int,
                  nice: int) -> None:
    """One JSON Lines file of generated sessions through ``fhir-iastm import`` (the file is
    written before the clock that matters starts: generation is ~10 % of an import's time)."""
    out_path = folder / f"sessions-{start:07d}.jsonl"
    with out_path.open("w", encoding="utf-8") as out:
        for record in records(n, run, start=start):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    files = [str(out_path)]
    proc = subprocess.run([cli, "import", *files], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False,
                          preexec_fn=(lambda: os.nice(-nice)) if nice else None)
    if proc.returncode != 0:
        raise SystemExit(f"import failed: {proc.stderr.decode()[-1000:]}")
    for path in files:
        Path(path).unlink()


def workers_of(master: int) -> list[int]:
    """gunicorn's worker pids (children of the master)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(master):
            out.append(int(stat.parent.name))
    return sorted(out)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def patient_paths(port: int, run: str, size: int) -> list[str]:
    """The patient search's requests over a sample of patients (their ids looked up first)."""
    patients = max(1, size // 10)
    step = max(1, patients // SAMPLE_PATIENTS)
    paths = []
    for p in range(0, patients, step)[:SAMPLE_PATIENTS]:
        token = urllib.parse.quote(f"{mrn_system(run, p)}|{mrn(run, p)}", safe="")
        by_identifier = f"/fhir/Patient?identifier={token}"
        status, body = send(port, ("GET", by_identifier, None), timeout=120)
        found = json.loads(body).get("entry") or [] if status == 200 else []
        if not found:
            raise SystemExit(f"patient {p} not found through the facade: HTTP {status}")
        pid = found[0]["resource"]["id"]
        paths += [by_identifier, f"/fhir/Procedure?patient={pid}&_include=Procedure:patient"]
    return paths


def first_searches(port: int, paths: list[str]) -> list[float]:
    """Latency (ms) of the first facade search on each fresh worker (two concurrent requests,
    so each worker is likely to take one; both are reported)."""
    times: list[float] = []

    def one(path: str) -> None:
        started = time.perf_counter()
        send(port, ("GET", path, None), timeout=300)
        times.append((time.perf_counter() - started) * 1000)

    pool = [threading.Thread(target=one, args=(p,)) for p in paths[:2]]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sorted(times)


def closed_loop(port: int, paths: list[str], count: int, threads: int = 4) -> float:
    """``count`` GETs as fast as ``threads`` clients go; requests/s."""
    counter = iter(range(count))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            send(port, ("GET", paths[i % len(paths)], None))

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return count / (time.perf_counter() - started)


def measure(name: str, port: int, make: Callable[[int], list[Request]], rate: float,
            args: argparse.Namespace, base: Result | None) -> Result:
    """``bench_api.scenario`` at ``rate``, accepting 200 and 201."""
    return scenario(port, name, make, args, base, (200, 201), rate=rate)


def bench_store(backend: str, size: int, args: argparse.Namespace) -> dict[str, float]:
    """One store: build it, serve it, measure; the figures for the growth table."""
    folder = Path(tempfile.mkdtemp(prefix="bench-facade-"))
    run = args.run if args.data else uuid.uuid4().hex[:6].upper()
    name = args.data_name
    if args.stores:  # one kept store per size: --stores NAME:RUN,... (same order as --sizes)
        name, run = args.stores[args.sizes.index(size)].split(":")
    figures: dict[str, float] = {}
    store = (kept_database(backend, args.data, f"{name}_{backend}") if args.data
             else database(backend, folder, size))
    try:
        with store as url:
            have = stored_sessions(url, run) if args.data else 0
            say(f"\n== {backend}, {size:,} sessions (run {run}; {have:,} already stored) ==")
            if have < size:
                rate, cpu_ms, n = import_store(url, folder, size, run, args.nice, have,
                                               args.import_budget)
                figures["import sessions/s"], figures["import CPU ms/session"] = rate, cpu_ms
                say(f"fhir-iastm import of {n:,}: {rate:.0f} sessions/s, {cpu_ms:.2f} ms CPU "
                    f"per session (load average {os.getloadavg()[0]:.1f})")
                if have + n < size:
                    say("import budget spent: run again to go on")
                    return figures
            if args.import_only:
                return figures
            proc, port = start_server(folder, args.workers, args.nice, url)
            args.master = proc.pid
            try:
                figures.update(serve_and_measure(port, proc.pid, run, size, args))
            finally:
                stop_server(proc)
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(folder)], check=False)
    return figures


def serve_and_measure(port: int, master: int, run: str, size: int,
                      args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    token = urllib.parse.quote(f"{mrn_system(run, 3)}|{mrn(run, 3)}", safe="")
    token2 = urllib.parse.quote(f"{mrn_system(run, 4)}|{mrn(run, 4)}", safe="")
    first = first_searches(port, [f"/fhir/Patient?identifier={token}",
                                  f"/fhir/Patient?identifier={token2}"])
    figures["first search ms (slowest worker)"] = first[-1]
    say(f"first Patient?identifier= on the fresh workers: {', '.join(f'{t:.1f}' for t in first)}"
        " ms")
    paths = patient_paths(port, run, size)
    pids = workers_of(master)
    before = [rss_mb(p) for p in pids]
    rate = closed_loop(port, paths, args.searches)
    after = [rss_mb(p) for p in pids]
    figures["worker RSS MB after searches (max)"] = max(after)
    say(f"worker RSS: {', '.join(f'{b:.0f}' for b in before)} MB -> "
        f"{', '.join(f'{a:.0f}' for a in after)} MB after {args.searches:,} patient searches "
        f"({rate:.0f}/s closed loop, 4 clients)")
    # numbered from 1,000,000 up, in a block of its own per run (a kept store is measured again)
    fresh = records(10**6, run, start=1_000_000 + int(time.time()) % 800 * 10_000)

    def posts(n: int) -> list[Request]:
        return [("POST", "/api/sessions", json.dumps(next(fresh)).encode()) for _ in range(n)]

    def searches(n: int) -> list[Request]:
        return [("GET", paths[i % len(paths)], None) for i in range(n)]

    def mixed(n: int) -> list[Request]:  # 4 searches : 3 POSTs = 200/s : 150/s at 350/s
        return interleave(searches, posts, n)

    say(f"\n{HEADER}")
    base = measure("GET /healthz (baseline)", port,
                   lambda n: [("GET", "/healthz", None)] * n, 200, args, None)
    search = measure("patient search", port, searches, args.search_rate, args, base)
    figures["healthz p99 ms (baseline)"] = base.pct(99)
    figures["patient search p99 ms"] = search.pct(99)
    figures["patient search CPU ms/req"] = search.server_cpu * 1000 / max(1, len(search.latencies))
    if args.reads_only:
        return figures
    post = measure("POST /api/sessions", port, posts, 200, args, base)
    mix = measure("mixed: 200 search/s + 150 POST/s", port, mixed, 350, args, base)
    figures["POST p99 ms"] = post.pct(99)
    figures["POST CPU ms/req"] = post.server_cpu * 1000 / max(1, len(post.latencies))
    figures["mixed: search p99 ms"] = _p99(mix.by_method.get("GET", []))
    figures["mixed: POST p99 ms"] = _p99(mix.by_method.get("POST", []))
    return figures


def _p99(latencies: list[float]) -> float:
    return Result("", 0, latencies).pct(99)


def growth(table: dict[tuple[str, int], dict[str, float]]) -> None:
    """How each figure grows from the smallest to the largest store, per backend."""
    for backend in sorted({b for b, _ in table}):
        sizes = sorted(s for b, s in table if b == backend)
        if len(sizes) < 2:
            continue
        say(f"\n== growth on {backend}: {' -> '.join(f'{s:,}' for s in sizes)} sessions ==")
        say(f"{'figure':<38} " + " ".join(f"{s:>10,}" for s in sizes) + "   ratio")
        for figure in table[(backend, sizes[0])]:
            values = [table[(backend, s)].get(figure, float("nan")) for s in sizes]
            ratio = values[-1] / values[0] if values[0] else float("nan")
            say(f"{figure:<38} " + " ".join(f"{v:10.1f}" for v in values) + f"  {ratio:6.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")],
                        default=[3000, 30000], help="store sizes in sessions")
    parser.add_argument("--backends", type=lambda v: v.split(","), default=["sqlite",
                                                                              "postgresql"])
    parser.add_argument("--duration", type=float, default=20.0, help="measured s per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="unrecorded s per scenario")
    parser.add_argument("--searches", type=int, default=10_000, help="searches before RSS")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--nice", type=int, default=0, help="as bench_api.py --nice")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--data", type=Path, default=None,
                        help="keep one growing store per backend here (SQLite file; PostgreSQL "
                             "database --data-name_postgresql): each size adds what is missing")
    parser.add_argument("--data-name", default="fhir_iastm_bench")
    parser.add_argument("--run", default="P9", help="identity prefix of a kept store")
    parser.add_argument("--import-budget", type=float, default=None,
                        help="s of import per invocation (a kept store resumes)")
    parser.add_argument("--import-only", action="store_true", help="build the stores only")
    parser.add_argument("--stores", type=lambda v: v.split(","), default=None,
                        help="with --data: NAME:RUN of a kept store per size, in --sizes order "
                             "(e.g. s30k:P9,s300k:Q3 for NAME_sqlite.db / NAME_postgresql)")
    parser.add_argument("--search-rate", type=float, default=200.0,
                        help="patient searches/s of the patient-search scenario")
    parser.add_argument("--reads-only", action="store_true",
                        help="first search, RSS and the patient search only (no POSTs)")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(-args.nice)
    say(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"gunicorn --workers {args.workers}")
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for backend in args.backends:
        for size in args.sizes:
            table[(backend, size)] = bench_store(backend, size, args)
    growth(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
