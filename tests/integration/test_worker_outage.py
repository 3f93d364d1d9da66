"""``fhir-iastm worker`` (the real command, default attempt budget) waits out a dead FHIR server:
with the target down (a loopback proxy that refuses, in front of the shared HAPI) every
``worker --once`` returns at once with exit 3, no entry loses its attempt budget and none is
dead-lettered; once the target is up, every entry reaches HAPI exactly once.

``E2E_RECORDS`` sets the count (default 60 here; benchmarks/bench_outage.py queues 10,000).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fhir_iastm.records import load_record
from fhir_iastm.storage import Store
from tests.integration.e2e_support import (
    PUSHABLE,
    HapiCounter,
    assert_exactly_once,
    batch,
    records_per_test,
)
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "fhir_iastm"]


@pytest.fixture
def proxy(hapi_base_url: str) -> Iterator[TcpProxy]:
    port = urlsplit(hapi_base_url).port
    assert port is not None
    with TcpProxy(port) as proxy:
        yield proxy


def worker_once(url: str, server: str, timeout: float) -> tuple[int, dict[str, Any], str]:
    """Run ``worker --once``; (exit code, its stats, stderr). Timing out fails the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IASTM_")}
    env["IASTM_WORKER_BACKOFF_BASE_S"] = "0.2"
    done = subprocess.run([*CLI, "worker", "--once", "--database-url", url, "--server", server],
                          capture_output=True, text=True, timeout=timeout, env=env, check=False)
    stats = next(json.loads(line) for line in done.stderr.splitlines()
                 if line.startswith("{") and '"claimed"' in line)
    return done.returncode, stats, done.stderr


def test_the_worker_waits_out_a_dead_server_then_pushes_every_entry_once(
        tmp_path: Path, proxy: TcpProxy, hapi_base_url: str) -> None:
    records = batch(records_per_test(60), PUSHABLE)
    url = f"sqlite:///{tmp_path / 'outage.db'}"
    store = Store(url)
    store.migrate()
    for record in records:
        store.save_record(load_record(record), record, actor="test")
    server = proxy.url("/fhir")
    proxy.down()
    for _ in range(5):  # a long outage, seen by five drains
        code, stats, stderr = worker_once(url, server, timeout=60)
        assert code == 3, stderr
        assert "the FHIR server is unreachable" in stderr
        assert (stats["claimed"], stats["dead_lettered"], stats["circuit"]) == (1, 0, "open")
    assert store.outbox_counts()["pending"] == len(records)
    assert max(store.get_sync(r["session_id"]).attempts for r in records) == 0
    proxy.up()
    deadline = time.monotonic() + 600
    while store.outbox_counts()["pending"]:
        assert time.monotonic() < deadline, store.outbox_counts()
        code, stats, stderr = worker_once(url, server, timeout=600)
        assert code == 0, stderr
        assert stats["dead_lettered"] == 0
    store.close()
    counter = HapiCounter(hapi_base_url)
    try:
        assert_exactly_once(counter, records)
    finally:
        counter.close()
