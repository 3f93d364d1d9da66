"""The outbox worker through a FHIR server outage: N entries queued, the target down, then up.

    .venv/bin/python benchmarks/bench_outage.py --server http://127.0.0.1:18090/fhir
        [--entries 10000] [--down-seconds 20] [--push N | --no-push]

The target is a loopback proxy (``tests/integration/tcp_proxy.py``) in front of a real FHIR
server; "down" closes it (connections refused). Phase 1 (down): ``worker --once`` as the CLI runs
it (timed, circuit starting half-open), then a polling worker for ``--down-seconds``: its claims
and push attempts are counted. Baseline in the same run: the behaviour before the circuit breaker
(a circuit that never opens, so every failure counts against its entry, and the default client
retry budget of 5 attempts per push), polling for as long, on a copy of the same queue.
Phase 2 (up): a polling worker drains ``--push`` entries (default: all) to the server; every
session is then counted on the server by identifier
(exactly once), and dead letters are counted (none expected).

Pushing 10,000 sessions needs ~2.2 GB of HAPI heap (about 220 KB a session): on a shared test
server, run phase 2 with a smaller ``--push`` (the rest stay queued, and are counted as such).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_iastm.logging import configure_logging  # noqa: E402
from fhir_iastm.records import load_record  # noqa: E402
from fhir_iastm.service import make_client, make_pusher, worker_client  # noqa: E402
from fhir_iastm.storage import Store  # noqa: E402
from fhir_iastm.backoff import Backoff  # noqa: E402
from fhir_iastm.sync.circuit import CLOSED, Circuit  # noqa: E402
from fhir_iastm.sync.worker import Worker  # noqa: E402
from tests.integration.e2e_support import PUSHABLE, HapiCounter, batch  # noqa: E402
from tests.integration.tcp_proxy import TcpProxy  # noqa: E402


class Counting:
    """Wraps a push function and counts the calls."""

    def __init__(self, push: Any) -> None:
        self.push, self.calls = push, 0

    def __call__(self, record: Any, last: Any) -> Any:
        self.calls += 1
        return self.push(record, last)


def queue(url: str, records: list[dict[str, Any]]) -> float:
    store = Store(url)
    store.migrate()
    started = time.perf_counter()
    for record in records:
        store.save_record(load_record(record), record, actor="bench")
    store.close()
    return time.perf_counter() - started


def polling(store: Store, push: Any, seconds: float, circuit: Circuit,
            until: Any = None) -> tuple[Worker, float]:
    """A polling worker for ``seconds`` (or until ``until()``); (worker, elapsed)."""
    worker = Worker(store, push, worker_id="bench", poll_interval=0.05, heartbeat=False,
                    backoff=Backoff(base=2.0, cap=600.0), circuit=circuit)
    thread = threading.Thread(target=worker.run)
    started = time.perf_counter()
    thread.start()
    deadline = started + seconds
    while time.perf_counter() < deadline and not (until and until()):
        time.sleep(0.2)
    worker.stop.set()
    thread.join()
    return worker, time.perf_counter() - started


def report(name: str, **fields: Any) -> None:
    print(json.dumps({"phase": name, **fields}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="FHIR base URL on 127.0.0.1")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--down-seconds", type=float, default=20.0)
    parser.add_argument("--push", type=int, default=None, help="entries to drain when up")
    parser.add_argument("--no-push", action="store_true")
    args = parser.parse_args()
    configure_logging(logging.WARNING)  # JSON lines on stderr: circuit and retry events
    target = urlsplit(args.server)
    if target.hostname not in ("127.0.0.1", "localhost") or not target.port:
        parser.error("--server must be a loopback URL with a port")
    tmp = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    records = batch(args.entries, PUSHABLE)
    url = f"sqlite:///{tmp / 'outage.db'}"
    report("queue", entries=len(records), seconds=round(queue(url, records), 1))
    shutil.copy(tmp / "outage.db", tmp / "baseline.db")
    with TcpProxy(target.port) as proxy:
        proxy.down()
        server = proxy.url(target.path)
        client = worker_client(server)
        store = Store(url)
        push = Counting(make_pusher(client))
        started = time.perf_counter()
        once = Worker(store, push, worker_id="bench-once", heartbeat=False).run(once=True)
        report("down: worker --once", seconds=round(time.perf_counter() - started, 2),
               claimed=once.claimed, push_calls=push.calls, circuit=once.circuit,
               dead_lettered=once.dead_lettered)
        push = Counting(make_pusher(client))
        worker, elapsed = polling(store, push, args.down_seconds,
                                  Circuit(probe=Backoff(base=1.0, cap=8.0)))
        counts = store.outbox_counts()
        report("down: polling worker with the circuit", seconds=round(elapsed, 1),
               push_calls=push.calls, claimed=worker.stats.claimed,
               dead_lettered=counts.get("dead_letter", counts.get("dead-letter", 0)),
               pending=counts["pending"], circuit=worker.stats.circuit)
        base_store = Store(f"sqlite:///{tmp / 'baseline.db'}")
        old_client = make_client(server)  # the client retry budget every push paid before
        base_push = Counting(make_pusher(old_client))
        base, elapsed = polling(base_store, base_push, args.down_seconds,
                                Circuit(threshold=10**9, state=CLOSED))
        report("down: baseline, no circuit (every failure counted)",
               seconds=round(elapsed, 1), push_calls=base_push.calls,
               claimed=base.stats.claimed, attempts_spent=base.stats.claimed,
               dead_lettered=base.stats.dead_lettered,
               ratio_push_calls=round(base_push.calls / max(1, push.calls), 1))
        base_store.close()
        old_client.close()
        if args.no_push:
            return
        proxy.up()
        goal = min(args.push or len(records), len(records))
        push = Counting(make_pusher(client))
        worker, elapsed = polling(store, push, 24 * 3600, Circuit(),
                                  until=lambda: store.outbox_counts()["done"] >= goal)
        report("up: drain", pushed=sum(worker.stats.done.values()), seconds=round(elapsed, 1),
               per_second=round(sum(worker.stats.done.values()) / elapsed, 1),
               dead_lettered=worker.stats.dead_lettered, outbox=store.outbox_counts())
        states = {r["session_id"]: store.get_sync(r["session_id"]).state for r in records}
        store.close()
        client.close()
    counter = HapiCounter(f"{target.scheme}://{target.netloc}{target.path}")
    on_server = {sid: counter.sessions(sid) for sid in states}
    counter.close()
    pushed = [sid for sid, state in states.items() if state == "pushed"]
    report("server census", pushed=len(pushed),
           exactly_once=sum(1 for sid in pushed if on_server[sid] == 1),
           queued_and_absent=sum(1 for sid, st in states.items()
                                 if st != "pushed" and on_server[sid] == 0),
           wrong=sum(1 for sid, st in states.items() if on_server[sid] != (st == "pushed")))


if __name__ == "__main__":
    main()
