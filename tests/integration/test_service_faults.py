"""Robustness of the push path against the real HAPI server: an unreachable server, a flapping
network, a worker killed with SIGKILL mid-drain, and two worker processes sharing PostgreSQL.
Whatever happens, every record arrives exactly once (no loss, no duplicate).

HAPI is shared by the whole run and is never stopped: outages are made by a loopback TCP proxy
(``tcp_proxy.TcpProxy``) between the worker and HAPI. Counts are made directly on HAPI.

Sizes (``E2E_RECORDS`` overrides every default here; the issue asks for 500): one worker pushes
~5-12 sessions/s to the local HAPI on the 2-core machines (12.4/s for 500 records on a warm HAPI,
~2/s on a cold, contended one), measured with
``python -m tests.integration.e2e_support http://127.0.0.1:18080/fhir 500``. With 500 records
these tests took 83-103 s each (flapping: 135 s) under a load average of ~8. The binding limit is
HAPI's heap, though: its H2 database lives in the 1 GiB heap of ``scripts/hapi``, shared by the
whole run (~220 KB per session after GC), and it ran out of memory after ~4,000 sessions. The
defaults (200 records with the server down, 150 for the crash and the two-worker tests, 40 flapping)
keep these tests at 12-45 s each on a fresh HAPI and under ~600 sessions in all;
``E2E_RECORDS=500`` runs the issue's size on a HAPI with room for it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from fhir_iastm.backoff import Backoff
from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.records import load_record
from fhir_iastm.service import make_pusher
from fhir_iastm.storage import Store
from fhir_iastm.storage.schema import outbox
from fhir_iastm.sync.worker import WorkerStats, run_worker
from tests.integration.e2e_support import (
    PUSHABLE,
    HapiCounter,
    assert_exactly_once,
    batch,
    dedicated_database,
    records_per_test,
)
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

#: Short, bounded waits so the tests spend their time pushing, not sleeping.
FAST_BACKOFF = Backoff(base=0.05, factor=2.0, cap=0.5, jitter=0.1)
FAST_CLIENT_RETRY = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)
DRAIN_DEADLINE_S = float(os.environ.get("E2E_DRAIN_DEADLINE_S", "600"))


@pytest.fixture
def counter(hapi_base_url: str) -> Iterator[HapiCounter]:
    counter = HapiCounter(hapi_base_url)
    yield counter
    counter.close()


@pytest.fixture
def proxy(hapi_base_url: str) -> Iterator[TcpProxy]:
    port = urlsplit(hapi_base_url).port
    assert port is not None, hapi_base_url
    with TcpProxy(port) as proxy:
        yield proxy


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'faults.db'}"


def stored(url: str, records: list[dict[str, Any]]) -> Store:
    """A migrated store holding ``records``, each queued for push (as POST /api/sessions does)."""
    store = Store(url)
    store.migrate()
    for record in records:
        assert store.save_record(load_record(record), record, actor="test").status == "created"
    return store


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout: float = DRAIN_DEADLINE_S,
    interval: float = 0.1,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(interval)


class WorkerThread:
    """``run_worker`` polling in a thread (fast backoff, practically unbounded attempts)."""

    def __init__(self, store: Store, base_url: str) -> None:
        self.client = FhirClient(base_url, retry=FAST_CLIENT_RETRY, timeout=(2, 60))
        self.stop = threading.Event()
        self.stats: WorkerStats | None = None
        self.thread = threading.Thread(target=self._run, args=(store,), name="e2e-worker")

    def _run(self, store: Store) -> None:
        self.stats = run_worker(
            store,
            make_pusher(self.client),
            worker_id="e2e-thread",
            poll_interval=0.05,
            max_attempts=100_000,
            backoff=FAST_BACKOFF,
            lease_seconds=30,
            stop=self.stop,
        )

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(120)
        self.client.close()
        assert not self.thread.is_alive(), "the worker did not stop"


def assert_all_pushed(store: Store, records: list[dict[str, Any]]) -> None:
    assert store.outbox_counts() == {
        "pending": 0,
        "in_flight": 0,
        "done": len(records),
        "dead-letter": 0,
    }
    states = {store.get_sync(r["session_id"]).state for r in records}
    assert states <= {"pushed", "unchanged"}, states


# --- an unreachable server ---------------------------------------------------------------------


def test_nothing_is_lost_while_the_server_is_down_and_all_arrive_once_it_is_back(
    sqlite_url: str, proxy: TcpProxy, counter: HapiCounter, hapi_base_url: str
) -> None:
    records = batch(records_per_test(200), PUSHABLE)
    store = stored(sqlite_url, records)
    base = proxy.url(urlsplit(hapi_base_url).path)
    proxy.down()

    with WorkerThread(store, base) as worker:
        # Down: the worker's first push is a probe; it fails, the circuit opens, and from then on
        # the worker only probes, one entry at growing delays. No entry is charged an attempt
        # (a failed probe gives it back), none is dropped or dead-lettered.
        def probed_twice() -> bool:
            return sum(store.get_sync(r["session_id"]).last_error_code == "E_FHIR_UNAVAILABLE"
                       for r in records) >= 2

        wait_until(probed_twice, "two probes while down", timeout=120)
        assert store.outbox_counts()["dead-letter"] == 0
        assert store.outbox_counts()["pending"] == len(records)
        with store.read() as conn:
            tries = conn.execute(select(outbox.c.attempts)).scalars().all()
        assert sum(tries) <= 1  # at most the probe in flight holds an attempt
        for record in random.sample(records, 5):
            sync = store.get_sync(record["session_id"]).to_dict()
            assert sync["state"] in ("queued", "pushing"), sync
            assert sync["pushed_version"] is None
            if sync["last_error_code"] is not None:
                assert sync["last_error_code"] == "E_FHIR_UNAVAILABLE", sync
            assert counter.sessions(record["session_id"]) == 0
        assert proxy.accepted == 0  # nothing reached HAPI

        proxy.up()
        wait_until(lambda: store.outbox_counts()["pending"] == 0, "the drain after recovery")

    assert worker.stats is not None
    assert worker.stats.dead_lettered == 0
    assert worker.stats.target_failures >= 2  # the probes while down
    assert sum(worker.stats.done.values()) == len(records)
    assert_all_pushed(store, records)
    assert {store.get_sync(r["session_id"]).state for r in records} == {"pushed"}
    assert_exactly_once(counter, records)
    store.close()


def test_a_flapping_network_cutting_requests_midway_loses_and_duplicates_nothing(
    sqlite_url: str, proxy: TcpProxy, counter: HapiCounter, hapi_base_url: str
) -> None:
    """Connections are cut at random moments, also while HAPI is executing a transaction whose
    response then never arrives: the retry must find the work done, not do it twice."""
    records = batch(records_per_test(40), PUSHABLE)
    store = stored(sqlite_url, records)
    base = proxy.url(urlsplit(hapi_base_url).path)
    rng = random.Random(os.environ.get("E2E_SEED", "flap"))
    flaps = 0

    with WorkerThread(store, base) as worker:
        while store.outbox_counts()["pending"] and flaps < 10_000:
            time.sleep(rng.uniform(0.2, 0.9))
            proxy.down()
            flaps += 1
            time.sleep(rng.uniform(0.05, 0.4))
            proxy.up()
        wait_until(lambda: store.outbox_counts()["pending"] == 0, "the drain")

    assert worker.stats is not None
    assert flaps >= 5, "the network did not flap during the drain"
    assert worker.stats.retried > 0  # some pushes really were cut
    assert worker.stats.dead_lettered == 0
    assert_all_pushed(store, records)
    assert_exactly_once(counter, records)
    store.close()


# --- worker processes ---------------------------------------------------------------------------


def worker_process(
    database_url: str,
    server: str,
    worker_id: str,
    log: Path,
    *,
    once: bool,
    lease_seconds: float = 60.0,
) -> subprocess.Popen[bytes]:
    """``fhir-iastm worker`` as a real OS process (stderr -> ``log``)."""
    script = Path(sys.executable).with_name("fhir-iastm")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "fhir_iastm"]
    command += [
        "worker",
        "--server",
        server,
        "--database-url",
        database_url,
        "--worker-id",
        worker_id,
        "--poll-interval",
        "0.2",
        "--lease-seconds",
        str(lease_seconds),
    ]
    if once:
        command.append("--once")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IASTM_")}
    with log.open("wb") as err:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)


def final_stats(log: Path) -> dict[str, Any]:
    """The worker's last stderr line: its WorkerStats as JSON."""
    lines = log.read_text().strip().splitlines()
    assert lines, f"{log.name} is empty"
    return json.loads(lines[-1])


def in_flight_entry(store: Store) -> tuple[int, datetime] | None:
    """(id, lease end) of a claimed, unfinished entry."""
    with store.read() as conn:
        row = conn.execute(
            select(outbox.c.id, outbox.c.claimed_until).where(
                outbox.c.done_at.is_(None), outbox.c.claimed_until.is_not(None)
            )
        ).first()
    return None if row is None else (row.id, row.claimed_until)


def test_a_worker_killed_mid_drain_loses_nothing_and_duplicates_nothing(
    sqlite_url: str, counter: HapiCounter, hapi_base_url: str, tmp_path: Path
) -> None:
    records = batch(records_per_test(500), PUSHABLE)
    store = stored(sqlite_url, records)
    lease = 3.0
    doomed = worker_process(
        sqlite_url, hapi_base_url, "doomed", tmp_path / "doomed.log", once=True, lease_seconds=lease
    )
    try:
        third = len(records) // 3
        wait_until(
            lambda: store.outbox_counts()["done"] >= third and in_flight_entry(store) is not None,
            "a third of the drain, push in flight",
            interval=0.02,
        )
        doomed.send_signal(signal.SIGKILL)
    finally:
        doomed.kill()
        returncode = doomed.wait(30)
    assert returncode == -signal.SIGKILL
    # The push the worker died in (its lease still runs). Pushes take ~0.3-1 s and the gap between
    # two claims a few ms, so this is almost always one entry; None only if the kill fell between.
    killed = in_flight_entry(store)
    if killed:  # --lease-seconds reached the worker (the default lease is 60 s)
        assert killed[1] <= datetime.now(UTC) + timedelta(seconds=lease), killed
    counts = store.outbox_counts()
    assert 0 < counts["pending"] < len(records), counts

    newcomer = worker_process(
        sqlite_url,
        hapi_base_url,
        "newcomer",
        tmp_path / "newcomer.log",
        once=False,
        lease_seconds=lease,
    )
    try:
        wait_until(lambda: store.outbox_counts()["pending"] == 0, "the newcomer's drain")
    finally:
        newcomer.send_signal(signal.SIGTERM)  # a polling worker stops gracefully
        assert newcomer.wait(60) == 0, (tmp_path / "newcomer.log").read_text()[-3000:]

    assert_all_pushed(store, records)
    with store.read() as conn:
        attempts = {
            row.id: row.attempts for row in conn.execute(select(outbox.c.id, outbox.c.attempts))
        }
    # One claim per entry; the killed push twice: the doomed worker's claim, then the newcomer's
    # once the lease ran out (nothing waited for the doomed worker, nothing else was repeated).
    expected = dict.fromkeys(attempts, 1) | ({killed[0]: 2} if killed else {})
    assert attempts == expected
    assert final_stats(tmp_path / "newcomer.log")["claimed"] == counts["pending"]
    assert_exactly_once(counter, records)
    store.close()


def test_two_worker_processes_on_postgresql_push_each_record_exactly_once(
    pg_url: str, counter: HapiCounter, hapi_base_url: str, tmp_path: Path
) -> None:
    records = batch(records_per_test(500), PUSHABLE)
    with dedicated_database(pg_url) as url:
        store = stored(url, records)
        logs = [tmp_path / f"w{n}.log" for n in range(2)]
        workers = [
            worker_process(url, hapi_base_url, f"w{n}", logs[n], once=True) for n in range(2)
        ]
        try:
            returncodes = [w.wait(DRAIN_DEADLINE_S) for w in workers]
        finally:
            for w in workers:
                w.kill()
        assert returncodes == [0, 0], [log.read_text()[-3000:] for log in logs]

        assert_all_pushed(store, records)
        claimed = [final_stats(log)["claimed"] for log in logs]
        assert sum(claimed) == len(records)  # no entry claimed twice
        assert min(claimed) > 0, claimed  # both really worked
        assert_exactly_once(counter, records)
        store.close()
