"""``bulk-pull``: the Bulk Data client against our own facade served over real HTTP (a thread),
with SMART Backend Services credentials and the export worker running beside it. Every record
comes back equal (as the round trip defines it) to what was posted."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from fhir_iastm.bulk_service import bulk_pull, make_bulk_client
from fhir_iastm.client.bulk import BulkClient, SmartCredentials
from fhir_iastm.errors import FhirAuthError, FhirUnavailableError
from fhir_iastm.mapping import canonical_for_roundtrip
from fhir_iastm.records import load_record
from fhir_iastm.service import PullError
from tests.api.bulk_support import GOOD, STATIC
from tests.smart.helpers import DATA, key, register


def _serve(app_for: Callable[..., Any], tmp_path: Any, poll: str, worker: bool
           ) -> Iterator[tuple[str, Any]]:
    app = app_for(IASTM_SMART_AUTH="true", IASTM_API_TOKENS="dev:read+write",
                  IASTM_EXPORT_DIR=str(tmp_path / "exports"), IASTM_EXPORT_POLL_SECONDS=poll)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    stop = threading.Event()

    def work() -> None:
        exporter = app.extensions["fhir_iastm"].exporter
        while not stop.is_set():
            if not exporter.run_next():
                stop.wait(0.2)

    threads = [threading.Thread(target=server.serve_forever, daemon=True)]
    if worker:
        threads.append(threading.Thread(target=work, daemon=True))
    for thread in threads:
        thread.start()
    yield f"http://127.0.0.1:{server.server_port}/fhir", app
    stop.set()
    server.shutdown()
    for thread in threads:
        thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def served(app_for: Callable[..., Any], tmp_path: Any) -> Iterator[tuple[str, Any]]:
    """The app on a free 127.0.0.1 port, and an export worker thread; both stopped afterwards."""
    yield from _serve(app_for, tmp_path, "1", worker=True)


@pytest.fixture
def served_idle(app_for: Callable[..., Any], tmp_path: Any) -> Iterator[tuple[str, Any]]:
    """The app served with a one-hour Retry-After and no worker."""
    yield from _serve(app_for, tmp_path, "3600", worker=False)


def test_bulk_pull_returns_every_posted_record(served: tuple[str, Any]) -> None:
    base, app = served
    client = app.test_client()
    posted = {}
    for path in GOOD:
        raw = json.loads(path.read_text())
        assert client.post("/api/sessions", json=raw, headers=STATIC).status_code == 201
        posted[raw["session_id"]] = load_record(raw)
    client_id = register(app, alg="RS384")
    bulk = make_bulk_client(base, client_id=client_id, private_jwk=key("RS384.private"),
                            max_wait=60)
    results = list(bulk_pull(bulk, settings=app.extensions["fhir_iastm"].mapping))
    errors = [r for r in results if isinstance(r, PullError)]
    assert not errors, errors
    pulled = {r.session_id: r for r in results}
    assert set(pulled) == set(posted)
    newest = {}  # a shared Patient carries the data of its newest record (docs/facade.md)
    for record in posted.values():
        mrn = record.patient.mrn
        if mrn not in newest or record.recorded_at > newest[mrn].recorded_at:
            newest[mrn] = record
    for sid, record in pulled.items():
        if newest[record.patient.mrn].session_id == sid:
            assert canonical_for_roundtrip(record) == canonical_for_roundtrip(posted[sid])


def test_bulk_pull_without_a_registered_key_fails_clearly(served: tuple[str, Any]) -> None:
    base, app = served
    client_id = register(app, alg="ES384")
    bulk = make_bulk_client(base, client_id=client_id, private_jwk=key("RS384.private"),
                            max_wait=5)
    with pytest.raises(FhirAuthError, match="invalid_client"):
        list(bulk_pull(bulk))


def test_polling_caps_retry_after_and_is_bounded(served_idle: tuple[str, Any]) -> None:
    base, app = served_idle
    raw = json.loads(GOOD[0].read_text())
    assert app.test_client().post("/api/sessions", json=raw, headers=STATIC).status_code == 201
    client_id = register(app)
    waits: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds
        if len(waits) == 2:  # the worker finishes the job while the client waits
            assert app.extensions["fhir_iastm"].exporter.run_next()

    bulk = BulkClient(base, smart=SmartCredentials(client_id, key("ES384.private")),
                      max_retry_after=30, sleep=sleep, clock=lambda: clock[0])
    status = bulk.kick_off("$export", [("_type", "Organization")])
    manifest = bulk.wait(status)
    assert waits == [30, 30]  # the server asked for 3600 s each time
    assert [(o["type"], o["count"]) for o in manifest["output"]] == [("Organization", 1)]
    bulk.delete(status)
    never = BulkClient(base, smart=SmartCredentials(client_id, key("ES384.private")),
                       max_wait=100, max_retry_after=30, sleep=lambda s: clock.__setitem__(
                           0, clock[0] + s), clock=lambda: clock[0])
    with pytest.raises(FhirUnavailableError, match="not done after 100 s"):
        never.wait(never.kick_off("$export"))


def test_bulk_pull_command_prints_one_record_a_line(served: tuple[str, Any]) -> None:
    from click.testing import CliRunner

    from fhir_iastm.cli import main
    from tests.smart.helpers import DATA

    base, app = served
    raw = json.loads(GOOD[0].read_text())
    assert app.test_client().post("/api/sessions", json=raw, headers=STATIC).status_code == 201
    client_id = register(app, alg="ES384")
    done = CliRunner().invoke(main, ["bulk-pull", "--server", base, "--client-id", client_id,
                                     "--key", str(DATA / "ES384.private.json"),
                                     "--max-wait", "60"])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["session_id"] for line in lines] == [raw["session_id"]]
    public = CliRunner().invoke(main, ["bulk-pull", "--server", base, "--client-id", client_id,
                                       "--key", str(DATA / "ES384.public.json")])
    assert public.exit_code == 2
    assert "IASTM_FHIR_SMART_KEY_FILE: expected exactly one private key, found 0" in public.output


def test_bulk_pull_takes_the_targets_credential_options(served: tuple[str, Any]) -> None:
    """The options of push (docs/targets.md#authentication): --smart-client-id / --smart-key
    (here a PEM key from ``keys generate``), --smart-token-url and --header."""
    from click.testing import CliRunner

    from fhir_iastm.cli import main

    base, app = served
    raw = json.loads(GOOD[1].read_text())
    assert app.test_client().post("/api/sessions", json=raw, headers=STATIC).status_code == 201
    client_id = register(app, alg="ES384")
    root = base.rsplit("/fhir", 1)[0]
    done = CliRunner().invoke(main, [
        "bulk-pull", "--server", base, "--smart-client-id", client_id,
        "--smart-key", str(DATA / "ES384.private.json"), "--smart-token-url",
        f"{root}/auth/token", "--header", "X-Request-Source: test", "--max-wait", "60"],
        env={"IASTM_FHIR_TOKEN": "", "IASTM_FHIR_SMART_CLIENT_ID": "",
             "IASTM_FHIR_SMART_KEY_FILE": ""})
    assert done.exit_code == 0, done.output
    assert [json.loads(line)["session_id"] for line in done.stdout.splitlines()] == [
        raw["session_id"]]
    half = CliRunner().invoke(main, ["bulk-pull", "--server", base, "--smart-client-id",
                                     client_id], env={"IASTM_FHIR_SMART_KEY_FILE": ""})
    assert half.exit_code == 2
    assert "IASTM_FHIR_SMART_CLIENT_ID and IASTM_FHIR_SMART_KEY_FILE go together" in half.output


def test_a_token_the_facade_refuses_midway_is_replaced_once(served: tuple[str, Any]) -> None:
    base, app = served
    raw = json.loads(GOOD[2].read_text())
    assert app.test_client().post("/api/sessions", json=raw, headers=STATIC).status_code == 201
    client_id = register(app)
    bulk = BulkClient(base, smart=SmartCredentials(client_id, key("ES384.private")),
                      max_wait=60)
    status = bulk.kick_off("$export", [("_type", "Patient")])
    assert bulk.tokens is not None
    bulk.tokens._token = "not-a-token-of-this-server"  # refused (401) at the status poll
    manifest = bulk.wait(status)
    assert bulk.tokens.requests == 2  # one refetch, one retry
    bulk.tokens._token = "not-a-token-of-this-server"  # and at the download
    patients = list(bulk.resources(manifest))
    assert bulk.tokens.requests == 3
    assert any(i.get("value") == raw["patient"]["mrn"] for p in patients
               for i in p.get("identifier", []))
