"""Fixtures for integration tests that need the real local HAPI FHIR R4 server.

``hapi_base_url`` (session scope) returns the base URL of a running server, e.g.
``http://127.0.0.1:18080/fhir``:

* if ``HAPI_BASE_URL`` is set, that server is used as is (it must answer ``/metadata``);
* otherwise ``scripts/hapi start`` is run: it builds ``tests/fhir_server`` if needed, starts the
  server on 127.0.0.1:``$HAPI_PORT`` (default 18080), or reuses the one it started earlier.

The fixture fails the test (never skips) when no server can be had. The server is left running
after the session, so later sessions (and parallel ones in the same checkout) reuse it; stop it
with ``scripts/hapi stop``, or set ``HAPI_STOP_AFTER_TESTS=1`` to stop it at the end of a session
that started it. Tests share one server: key test data on unique identifiers/ids.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
HAPI_SCRIPT = REPO_ROOT / "scripts" / "hapi"
# First build downloads the Maven dependencies; start-up itself is bounded by the script (180 s).
START_TIMEOUT_S = float(os.environ.get("HAPI_FIXTURE_TIMEOUT", "1800"))


def _answers(base_url: str, wait_s: float = 0.0) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            r = requests.get(
                f"{base_url}/metadata", headers={"Accept": "application/fhir+json"}, timeout=10
            )
            if r.status_code == 200 and r.json().get("resourceType") == "CapabilityStatement":
                return True
        except (requests.RequestException, ValueError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(1.0)


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HAPI_SCRIPT), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def hapi_base_url() -> Iterator[str]:
    """Base URL (no trailing slash) of the running local HAPI FHIR R4 server."""
    external = os.environ.get("HAPI_BASE_URL", "").strip().rstrip("/")
    if external:
        if not _answers(external, wait_s=30):
            pytest.fail(
                f"HAPI_BASE_URL={external} does not answer {external}/metadata"
                " with a CapabilityStatement"
            )
        yield external
        return

    was_running = _script("status", timeout=30).returncode == 0
    try:
        proc = _script("start", timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/hapi start did not finish within {START_TIMEOUT_S:.0f} s")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        pytest.fail(
            f"scripts/hapi start failed (exit {proc.returncode}):\n"
            f"--- stderr (tail) ---\n{proc.stderr[-6000:]}\n--- stdout ---\n{proc.stdout[-2000:]}"
        )
    base_url = lines[-1].strip().rstrip("/")
    if not _answers(base_url, wait_s=30):
        pytest.fail(f"scripts/hapi start printed {base_url} but it does not answer /metadata")

    yield base_url

    if not was_running and os.environ.get("HAPI_STOP_AFTER_TESTS") == "1":
        _script("stop", timeout=120)
