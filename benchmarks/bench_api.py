"""API load benchmark (docs/performance.md#targets: ``POST /api/sessions`` p99 < 50 ms at 200
requests/s, SQLite).

    .venv/bin/python benchmarks/bench_api.py [--rate 200] [--duration 20] [--seed 300] [--workers 2]
        [--only healthz,search,mixed-issue] [--mixed-rate 350]
        [--generator select|keepalive|threads] [--worker-class thread|sync]

Starts gunicorn as the service is served (``scripts/run``: ``-c python:fhir_iastm.gunicorn_conf``,
2 processes of ``IASTM_WEB_THREADS`` threads; ``--worker-class sync``: gunicorn's
one-request-at-a-time worker instead) with ``--workers 2 wsgi:app`` on a free loopback port with a
fresh SQLite database in a temporary folder, waits for ``/healthz``, stores ``--seed`` records (10
sessions per patient), then drives each scenario from this process (a second process, over
loopback) with an open-loop load generator: request ``i`` is due at ``start + i / rate`` and is
sent then, on a fresh connection, and its latency is measured from that scheduled time, so a
stalled server is charged for the requests it delayed (no coordinated omission). ``--generator
select`` (the default, ``loadgen.py``) sends from one thread with non-blocking sockets, however
many requests are outstanding; ``--generator keepalive`` the same, but a request goes on a
connection an earlier answer left open when one is idle (what clients with a connection pool do:
fhirpy, fhirclient's ``requests.Session``); ``--generator threads`` from a pool of 64 threads with
``http.client`` (the earlier generator, which costs the shared cores more CPU per request). Each
scenario gets a short unrecorded warm-up.

Scenarios, in order: ``GET /healthz`` (the baseline on this machine, same run), ``GET
/api/sessions/<id>``, ``GET /fhir/Procedure?patient=<id>``, ``GET /fhir/Procedure?_count=50``,
``POST /api/sessions`` (distinct valid records: the good examples with fresh session ids), the
patient search again over everything stored, a mix (3 POSTs : 1 patient search, each row
split by method), then issue 9's patient search as an EHR sends it (``Patient?identifier=
system|value``, then ``Procedure?patient=<id>&_include=Procedure:patient``, patient after patient)
at ``--rate``, and its mixed load: those searches at 200/s with 150 POST/s (``--mixed-rate`` 350
in all, 4 searches : 3 POSTs). Prints offered rate, achieved throughput, p50/p90/p99/max latency
and errors per scenario, each p99 as a ratio to the baseline's, the server's CPU time per request
(gunicorn master + workers, from /proc: what the request costs, whatever else runs), the load
generator's own CPU time per request (this process) and the machine's 1-minute load average
(other processes on the 2 cores show up in every latency).
Numbers, not assertions: the machine's load matters.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import run_open_loop  # noqa: E402 — a sibling script

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "tests/data/examples").glob("good-*.json"))
HOST = "127.0.0.1"
#: A request: (method, path, body or None).
Request = tuple[str, str, bytes | None]


@dataclass
class Result:
    """One scenario's outcome."""

    name: str
    offered: float
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    server_cpu: float = 0.0
    generator_cpu: float = 0.0
    connections: int | None = None  # connections opened (select generators)
    by_method: dict[str, list[float]] = field(default_factory=dict)

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def row(self, base_p99: float | None, machine: bool = True) -> str:
        """One table line; ``machine=False`` leaves out CPU per request and load average."""
        ratio = f"{self.pct(99) / base_p99:7.1f}x" if base_p99 else "    base"
        throughput = len(self.latencies) / self.elapsed if self.elapsed else 0.0
        errors = sum(self.errors.values())
        worst = max(self.latencies, default=0) * 1000
        done = len(self.latencies) + errors
        cpu = self.server_cpu * 1000 / done if done else 0.0
        gen = self.generator_cpu * 1000 / done if done else 0.0
        return (f"{self.name:<34} {self.offered:6.0f} {throughput:7.1f} {self.pct(50):7.1f} "
                f"{self.pct(90):7.1f} {self.pct(99):7.1f} {worst:8.1f} {errors:6d} {ratio}"
                + (f" {cpu:8.2f} {gen:8.2f} {os.getloadavg()[0]:6.1f}" if machine else ""))


HEADER = (f"{'scenario':<34} {'offer/s':>6} {'got/s':>7} {'p50 ms':>7} {'p90 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>8} {'errors':>6} p99/base cpu ms/r  gen ms/r  load1")


def own_cpu() -> float:
    """CPU seconds (user + system) this process (the load generator) used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu(master: int) -> float:
    """CPU seconds (user + system) used so far by gunicorn's master and workers (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if stat.parent.name == str(master) or fields[1] == str(master):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def say(text: str) -> None:
    """A benchmark reports on stdout."""
    print(text, flush=True)  # noqa: T201


def send(port: int, req: Request, timeout: float = 30.0) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a fresh connection (gunicorn's sync workers close each one)."""
    method, path, body = req
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def drive(port: int, name: str, requests: list[Request], rate: float, expect: tuple[int, ...],
          threads: int = 64) -> Result:
    """Open loop: request i is due at start + i/rate; latency counts from that due time."""
    result = Result(name, rate)
    lock = threading.Lock()
    counter = iter(range(len(requests)))
    start = time.perf_counter() + 0.05

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                status, _ = send(port, requests[i])
                outcome = None if status in expect else f"HTTP {status}"
            except OSError as exc:
                outcome = type(exc).__name__
            done = time.perf_counter()
            with lock:
                _record(result, requests[i], due, done, start, outcome)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return result


def _record(result: Result, req: Request, due: float, done: float, start: float,
            outcome: str | None) -> None:
    if outcome is None:
        result.latencies.append(done - due)
        result.by_method.setdefault(req[0], []).append(done - due)
    else:
        result.errors[outcome] = result.errors.get(outcome, 0) + 1
    result.elapsed = max(result.elapsed, done - start)


def drive_select(port: int, name: str, requests: list[Request], rate: float,
                 expect: tuple[int, ...], keep_alive: bool = False) -> Result:
    """Open loop from one thread (``loadgen``): request i is sent at start + i/rate, however
    many are still outstanding; latency counts from that due time, as in :func:`drive`.
    ``keep_alive``: connections an answer left open are used again (``Result.connections``)."""
    result = Result(name, rate)
    start = time.perf_counter() + 0.05

    def record(req: Request, due: float, done: float, outcome: str | None) -> None:
        _record(result, req, due, done, start, outcome)

    result.connections = run_open_loop(HOST, port, requests, rate, expect, record, start,
                                       keep_alive=keep_alive)
    return result


def drive_keepalive(port: int, name: str, requests: list[Request], rate: float,
                    expect: tuple[int, ...]) -> Result:
    """:func:`drive_select` with kept-alive connections, as a client's connection pool."""
    return drive_select(port, name, requests, rate, expect, keep_alive=True)


#: the load generators: ``threads`` (a pool of 64 threads, ``http.client``), ``select`` (one
#: thread, non-blocking sockets, a fresh connection per request) or ``keepalive`` (``select``
#: reusing the connections answers leave open); all open loop, latency from each due time.
GENERATORS = {"threads": drive, "select": drive_select, "keepalive": drive_keepalive}


# --- the data -----------------------------------------------------------------------------------

def records(n: int, run: str, per_patient: int = 10) -> list[dict[str, Any]]:
    """N distinct valid records: the good examples with fresh session ids and shared patients."""
    sources = [json.loads(p.read_text()) for p in EXAMPLES]
    out = []
    for i in range(n):
        data = json.loads(json.dumps(sources[i % len(sources)]))
        data["session_id"] = f"B{run}-{i:06d}-{uuid.uuid4().hex[:8]}"
        data["patient"]["mrn"] = f"MRN-{run}-{i // per_patient:05d}"
        out.append(data)
    return out


def posts(bodies: list[dict[str, Any]]) -> list[Request]:
    return [("POST", "/api/sessions", json.dumps(b).encode()) for b in bodies]


def patient_ids(port: int, mrns: list[str]) -> list[str]:
    """The facade's logical Patient ids of some MRNs (via ``/fhir/Patient?identifier=``)."""
    return [pid for _, pid in patient_tokens(port, mrns)]


def patient_tokens(port: int, mrns: list[str]) -> list[tuple[str, str]]:
    """(``system|value`` of the MRN identifier, logical Patient id) of some MRNs, found through
    ``/fhir/Patient?identifier=<mrn>``."""
    found = []
    for mrn in mrns:
        query = urllib.parse.quote(mrn)
        status, body = send(port, ("GET", f"/fhir/Patient?identifier={query}", None))
        entries = json.loads(body).get("entry") or [] if status == 200 else []
        if entries:
            patient = entries[0]["resource"]
            system = next(i.get("system", "") for i in patient.get("identifier", [])
                          if i.get("value") == mrn)
            found.append((f"{system}|{mrn}", patient["id"]))
    if not found:
        raise SystemExit("could not find any stored Patient through the facade")
    return found


def search_paths(tokens: list[tuple[str, str]]) -> list[str]:
    """The EHR's patient search (issue 9): ``Patient?identifier=system|value``, then
    ``Procedure?patient=<id>&_include=Procedure:patient``, patient after patient."""
    paths = []
    for token, pid in tokens:
        paths += [f"/fhir/Patient?identifier={urllib.parse.quote(token, safe='')}",
                  f"/fhir/Procedure?patient={pid}&_include=Procedure:patient"]
    return paths


def interleave(searches: Callable[[int], list[Request]], writes: Callable[[int], list[Request]],
               n: int, reads: int = 4, period: int = 7) -> list[Request]:
    """N requests, ``reads`` of every ``period`` from ``searches`` (in their order), the rest
    from ``writes``: 4 of 7 is 200 searches/s with 150 POST/s at 350/s."""
    chosen = [i % period in range(0, period, 2)[:reads] for i in range(n)]
    gets = iter(searches(sum(chosen)))
    posted = iter(writes(n - sum(chosen)))
    return [next(gets) if read else next(posted) for read in chosen]


# --- the server ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(folder: Path, workers: int, nice: int, database_url: str | None = None,
                 code: Path | None = None, worker_class: str = "thread"
                 ) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn on a free loopback port, on ``database_url`` (default: SQLite in ``folder``),
    serving the checkout ``code`` (default: this one) with this checkout's environment:
    ``worker_class`` "thread" is the served configuration (``scripts/run``:
    ``fhir_iastm/gunicorn_conf.py``, threads per process from ``IASTM_WEB_THREADS``), "sync"
    gunicorn's default worker (one request at a time per process)."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url or f"sqlite:///{folder}/bench.db")
    if code is not None:  # another checkout's code (e.g. main), measured the same way
        env["PYTHONPATH"] = str(code)
    env.pop("IASTM_DATABASE_URL", None)
    env.pop("IASTM_API_TOKENS", None)
    log = (folder / "gunicorn.log").open("wb")
    config = ["-c", "python:fhir_iastm.gunicorn_conf"] if worker_class == "thread" else []
    cmd = [str(ROOT / ".venv/bin/gunicorn"), *config, "--bind", f"{HOST}:{port}", "--workers",
           str(workers), "wsgi:app"]
    proc = subprocess.Popen(cmd, cwd=code or ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=(lambda: os.nice(-nice)) if nice else None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}; see {folder}/gunicorn.log")
        try:
            if send(port, ("GET", "/healthz", None))[0] == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the run ------------------------------------------------------------------------------------

def catch_up(port: int, path: str, n: int) -> None:
    """N concurrent facade requests, so every worker projects the records stored since its last
    refresh before the scenario is measured; prints how long that took."""
    started = time.perf_counter()
    outcomes: list[str] = []

    def one() -> None:
        try:
            outcomes.append(str(send(port, ("GET", path, None), timeout=300)[0]))
        except OSError as exc:
            outcomes.append(type(exc).__name__)

    pool = [threading.Thread(target=one) for _ in range(n)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    say(f"  (facade catch-up before the next scenario: {time.perf_counter() - started:.1f} s, "
        f"{n} concurrent requests: {', '.join(sorted(outcomes))})")


def scenario(port: int, name: str, make: Callable[[int], list[Request]], args: argparse.Namespace,
             base: Result | None, expect: tuple[int, ...] = (200,),
             rate: float | None = None) -> Result:
    """A warm-up (not recorded), then ``rate * duration`` requests at the fixed rate
    (``rate``: ``args.rate`` unless given); rows split by method when several are mixed."""
    rate = rate or args.rate
    generate = GENERATORS[getattr(args, "generator", "select")]
    generate(port, name, make(max(1, int(rate * args.warmup))), rate, expect)
    requests = make(int(rate * args.duration))
    cpu, own = server_cpu(args.master), own_cpu()
    result = generate(port, name, requests, rate, expect)
    result.server_cpu = server_cpu(args.master) - cpu
    result.generator_cpu = own_cpu() - own
    say(result.row(base.pct(99) if base else None))
    if len(result.by_method) > 1:
        for method, latencies in sorted(result.by_method.items()):
            share = len(latencies) / len(result.latencies)
            part = Result(f"  of which {method}", rate * share, latencies,
                          elapsed=result.elapsed)
            say(part.row(base.pct(99) if base else None, machine=False))
    if result.errors:
        say(f"    errors: {result.errors}")
    if getattr(args, "generator", "select") == "keepalive":
        say(f"    {result.connections} connections for {len(requests)} requests")
    return result


SCENARIOS = ("healthz", "read", "patient", "count", "post", "patient-after", "mixed", "search",
             "mixed-issue")


def run(port: int, args: argparse.Namespace) -> list[Result]:
    """Seed, then the scenarios named by ``--only`` (all by default), in the order above."""
    run_id = uuid.uuid4().hex[:6]
    seeded = records(args.seed, run_id)
    for req in posts(seeded):
        status, body = send(port, req)
        if status != 201:
            raise SystemExit(f"seeding failed: HTTP {status} {body[:300]!r}")
    sids = [r["session_id"] for r in seeded]
    tokens = patient_tokens(port, sorted({r["patient"]["mrn"] for r in seeded})[:20])
    pids = [pid for _, pid in tokens]

    def cycle(paths: list[str]) -> Callable[[int], list[Request]]:
        return lambda n: [("GET", paths[i % len(paths)], None) for i in range(n)]

    per_scenario = int(max(args.rate, args.mixed_rate) * (args.duration + args.warmup)) + 10
    # a scenario may repeat
    writers = sum(args.only.count(k) for k in ("post", "mixed", "mixed-issue"))
    fresh = iter(records(max(1, writers) * per_scenario, run_id + "p"))
    stored = args.seed + per_scenario - 10
    by_patient = cycle([f"/fhir/Procedure?patient={p}" for p in pids])
    def mixed(n: int) -> list[Request]:
        searches = by_patient(n)
        return [searches[i] if i % 4 == 3 else posts([next(fresh)])[0] for i in range(n)]

    issue_search = cycle(search_paths(tokens))

    def new_posts(n: int) -> list[Request]:
        return posts([next(fresh) for _ in range(n)])

    ok, created = (200,), (201,)
    plan: dict[str, tuple[str, Callable[[int], list[Request]], tuple[int, ...]]] = {
        "healthz": ("GET /healthz (baseline)", cycle(["/healthz"]), ok),
        "read": ("GET /api/sessions/<id>", cycle([f"/api/sessions/{s}" for s in sids]), ok),
        "patient": (f"GET /fhir/Procedure?patient= ({args.seed})", by_patient, ok),
        "count": (f"GET /fhir/Procedure?_count=50 ({args.seed})",
                  cycle(["/fhir/Procedure?_count=50"]), ok),
        "post": ("POST /api/sessions (new records)",
                 lambda n: posts([next(fresh) for _ in range(n)]), created),
        "patient-after": (f"GET /fhir/Procedure?patient= ({stored})", by_patient, ok),
        "mixed": ("mixed: 3 POST : 1 patient search", mixed, ok + created),
        "search": ("patient search (EHR, issue 9)", issue_search, ok),
        "mixed-issue": ("mixed: 4 search : 3 POST",
                        lambda n: interleave(issue_search, new_posts, n), ok + created),
    }
    say(f"{args.seed} records seeded; {args.rate:.0f} req/s for {args.duration:.0f} s per "
        f"scenario (+{args.warmup:.0f} s warm-up), gunicorn --workers {args.workers} "
        f"({args.worker_class}), SQLite, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        f"{f', nice -{args.nice}' if args.nice else ''}\n")
    say(HEADER)
    results: list[Result] = []
    base = None
    for key in args.only:
        name, make, expect = plan[key]
        if key == "patient-after":
            catch_up(port, f"/fhir/Procedure?patient={pids[0]}", 2 * args.workers)
        rate = args.mixed_rate if key == "mixed-issue" else None
        results.append(scenario(port, name, make, args, base, expect, rate=rate))
        if key == "healthz":
            base = results[-1]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="offered requests per second")
    parser.add_argument("--duration", type=float, default=20.0, help="measured s per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="unrecorded seconds per scenario")
    parser.add_argument("--seed", type=int, default=300, help="records stored before the GETs")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--only", type=lambda v: v.split(","), default=list(SCENARIOS),
                        help=f"comma-separated scenarios, from: {','.join(SCENARIOS)}")
    parser.add_argument("--nice", type=int, default=0,
                        help="run gunicorn and the generator N nice levels above the rest (root): "
                        "an approximation of 2 cores of their own on a shared machine")
    parser.add_argument("--worker-class", choices=("thread", "sync"), default="thread",
                        help="thread: the served configuration (fhir_iastm/gunicorn_conf.py, "
                        "IASTM_WEB_THREADS threads per process); sync: gunicorn's default worker")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (db, log)")
    parser.add_argument("--server-code", type=Path, default=None,
                        help="serve another checkout's code (e.g. /work/main) to compare")
    parser.add_argument("--mixed-rate", type=float, default=350.0,
                        help="offered requests per second of mixed-issue (4 search : 3 POST)")
    parser.add_argument("--generator", choices=sorted(GENERATORS), default="select",
                        help="the load generator: one thread with non-blocking sockets, a fresh "
                        "connection per request (select) or kept-alive connections used again "
                        "(keepalive), or 64 threads with http.client (threads)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))
    if args.nice:
        os.nice(-args.nice)  # the load generator too: its timing is part of every number
    proc, port = start_server(folder, args.workers, args.nice, code=args.server_code,
                              worker_class=args.worker_class)
    args.master = proc.pid
    try:
        run(port, args)
    finally:
        stop_server(proc)
        if args.keep:
            say(f"\nkept {folder}")
        else:
            subprocess.run(["rm", "-rf", str(folder)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
