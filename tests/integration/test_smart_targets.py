"""The SMART client end to end, against real servers (docs/targets.md):

* our own service as the protected FHIR server (``IASTM_SMART_AUTH=true``, served over HTTP in a
  thread): a client registered with ``fhir-iastm clients add`` from a ``keys generate`` key pair
  pulls through ``fhir-iastm pull``; every facade request checks the token and its scopes;
* the same service's token endpoint as the authorization server of a push into the shared HAPI's
  open ``/fhir`` (HAPI checking tokens itself: test_smart_hapi.py), with every log record of the
  push captured and searched for ``eyJ``;
* sandbox mode on that HAPI: a run's tagged resources are deleted by ``sandbox-clean`` and nothing
  else is touched.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from werkzeug.serving import make_server

from fhir_iastm.api import create_app
from fhir_iastm.cli import main
from fhir_iastm.config import Settings
from tests.integration.e2e_support import batch

pytestmark = pytest.mark.integration
CANON = "https://iastm.example.org/fhir"
#: The auth and sandbox variables of the test's own environment must not leak in.
ENV = {name: "" for name in ("IASTM_FHIR_TOKEN", "IASTM_FHIR_SMART_CLIENT_ID",
                             "IASTM_FHIR_SMART_KEY_FILE", "IASTM_FHIR_SMART_TOKEN_URL",
                             "IASTM_FHIR_SANDBOX", "IASTM_CANONICAL_BASE")}
STATIC = {"Authorization": "Bearer dev"}


class Served:
    """Our service on a free 127.0.0.1 port with SMART on, its database and a key pair."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = f"sqlite:///{tmp_path / 'facade.db'}"
        self.tmp = tmp_path
        runner = CliRunner()
        assert runner.invoke(main, ["init-db", "--database-url", self.db]).exit_code == 0
        self.app = create_app(Settings.from_env({
            "IASTM_DATABASE_URL": self.db, "IASTM_SMART_AUTH": "true",
            "IASTM_API_TOKENS": "dev:read+write"}))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.root = f"http://127.0.0.1:{self.server.server_port}"
        self.base = f"{self.root}/fhir"

    def register(self, scope: str, alg: str = "ES384") -> tuple[str, Path]:
        """``keys generate`` + ``clients add``: the client_id and the private key file."""
        runner = CliRunner()
        name = f"k{uuid.uuid4().hex[:8]}"
        made = runner.invoke(main, ["keys", "generate", "--alg", alg, "--out", str(self.tmp),
                                    "--name", name])
        assert made.exit_code == 0, made.output
        added = runner.invoke(main, ["clients", "add", "--name", "EHR push test", "--jwks",
                                     str(self.tmp / f"{name}.jwks.json"), "--scope", scope,
                                     "--database-url", self.db])
        assert added.exit_code == 0, added.output
        return json.loads(added.stdout)["client_id"], self.tmp / f"{name}.key.pem"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
        self.app.extensions["fhir_iastm"].store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path)
    yield served
    served.stop()


def _pull(served: Served, client_id: str, key: Path, session_id: str) -> Any:
    return CliRunner().invoke(main, [
        "pull", "--server", served.base, "--smart-client-id", client_id, "--smart-key", str(key),
        "--session", session_id, "--canonical-base", CANON], env=ENV)


def test_reads_through_our_smart_protected_facade(served: Served) -> None:
    """The SMART client of ``pull`` (the CLI's own ``pull`` query uses an ``_include`` the
    facade does not serve, Procedure:performer, so the reads are made one by one here)."""
    from fhir_iastm.service import configured_client

    [record] = batch(1)
    posted = requests.post(f"{served.root}/api/sessions", json=record, headers=STATIC, timeout=30)
    assert posted.status_code == 201, posted.text
    assert requests.get(f"{served.base}/Procedure", timeout=30).status_code == 401  # protected
    client_id, key = served.register("system/*.rs", alg="RS384")
    settings = Settings(fhir_base_url=served.base, fhir_smart_client_id=client_id,
                        fhir_smart_key_file=key)
    client = configured_client(settings, "pull")
    assert client is not None
    assert client.tokens is not None
    found = client.search("Procedure", [
        ("identifier", f"{CANON}/sid/iastm-session|{record['session_id']}")])
    [procedure] = [e["resource"] for e in found["entry"]]
    patient = client.read("Patient", procedure["subject"]["reference"].split("/")[1])
    assert any(i.get("value") == record["patient"]["mrn"] for i in patient["identifier"])
    assert client.tokens.requests == 1  # one token for every read
    client.tokens._token = "not-a-token-of-this-server"  # a token the server refuses (401)
    assert client.read("Patient", patient["id"])["id"] == patient["id"]
    assert client.tokens.requests == 2  # one refetch, one retry


def test_a_narrow_registration_is_reported_before_the_pull_reads(served: Served) -> None:
    client_id, key = served.register("system/Procedure.rs")
    result = _pull(served, client_id, key, "NOT-READ")
    assert result.exit_code == 3
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: IASTM_FHIR_SMART_CLIENT_ID: the server granted "
                           "'system/Procedure.rs', which lacks Condition.rs, Encounter.rs")
    assert result.stdout == ""


def test_a_push_the_server_refuses_to_scope_writes_nothing(served: Served,
                                                           tmp_path: Path) -> None:
    """Our facade registers read scopes only: the push's token request is refused (invalid_scope)
    and the push stops before its first FHIR request."""
    client_id, key = served.register("system/*.rs")
    [record] = batch(1)
    (tmp_path / "r.jsonl").write_text(json.dumps(record) + "\n")
    result = CliRunner().invoke(main, [
        "push", "--server", served.base, "--smart-client-id", client_id, "--smart-key", str(key),
        str(tmp_path / "r.jsonl")], env=ENV)
    assert result.exit_code == 3
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: IASTM_FHIR_SMART_SCOPES_V1 / the client's registered scopes: "
                           f"the token endpoint {served.root}/auth/token refused: HTTP 400 "
                           "invalid_scope")
    assert result.stdout == ""


class Everything(logging.Handler):
    """Every log record of every logger, with its arguments and extra fields."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.getMessage()} {record.__dict__!r}")


@pytest.fixture
def every_log() -> Iterator[Everything]:
    handler, root = Everything(), logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "fhir_iastm", "urllib3")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _count(hapi: str, rtype: str, params: dict[str, str]) -> int:
    answer = requests.get(f"{hapi}/{rtype}", params={**params, "_summary": "count"},
                          headers={"Cache-Control": "no-cache"}, timeout=30)
    answer.raise_for_status()
    return int(answer.json()["total"])


def _session_count(hapi: str, session_id: str) -> int:
    return _count(hapi, "Procedure",
                  {"identifier": f"{CANON}/sid/iastm-session|{session_id}"})


def test_smart_push_into_hapi_with_sandbox_tag_then_clean(
        served: Served, hapi_base_url: str, tmp_path: Path, every_log: Everything) -> None:
    client_id, key = served.register("system/*.cruds")
    kept, tagged = batch(2, names=["good-03"] * 2)
    tagged["patient"]["mrn"] += "-sandbox"  # its own patient: created (and so tagged) by the run
    files = {}
    for name, record in (("kept", kept), ("tagged", tagged)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text(json.dumps(record) + "\n")
    smart = ["--server", hapi_base_url, "--smart-client-id", client_id, "--smart-key", str(key),
             "--smart-token-url", f"{served.root}/auth/token", "--canonical-base", CANON]
    runner = CliRunner()
    first = runner.invoke(main, ["push", *smart, str(files["kept"])], env=ENV)
    assert first.exit_code == 0, first.output
    run_tag = f"run-test-{uuid.uuid4().hex[:12]}"
    second = runner.invoke(main, ["push", *smart, "--sandbox-tag", run_tag,
                                  str(files["tagged"])], env=ENV)
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["status"] == "pushed"
    assert json.loads(second.stderr.splitlines()[0]) == {
        "sandbox_tag": run_tag, "system": f"{CANON}/CodeSystem/iastm-sandbox-run"}
    assert every_log.seen
    assert not [line for line in every_log.seen if "eyJ" in line]

    tag = f"{CANON}/CodeSystem/iastm-sandbox-run|{run_tag}"
    assert _count(hapi_base_url, "Procedure", {"_tag": tag}) >= 1
    assert _count(hapi_base_url, "Patient", {"_tag": tag}) == 1
    before = {t: _count(hapi_base_url, t, {}) for t in ("Procedure", "Observation", "Patient",
                                                         "Organization", "Practitioner")}
    tagged_before = {t: _count(hapi_base_url, t, {"_tag": tag}) for t in before}
    cleaned = runner.invoke(main, ["sandbox-clean", *smart, "--tag", run_tag], env=ENV)
    assert cleaned.exit_code == 0, cleaned.output
    report = json.loads(cleaned.stdout)
    assert report["kept"] == []
    for rtype, count in tagged_before.items():
        assert report["deleted"].get(rtype, 0) == count
        assert _count(hapi_base_url, rtype, {"_tag": tag}) == 0
    after = {t: _count(hapi_base_url, t, {}) for t in before}
    # exactly the tagged resources went (other tests may add to the shared server meanwhile,
    # never take away): nothing untagged was deleted
    for rtype in before:
        assert after[rtype] >= before[rtype] - tagged_before[rtype]
    assert _session_count(hapi_base_url, kept["session_id"]) == 1
    assert _session_count(hapi_base_url, tagged["session_id"]) == 0
    clinic = f"{CANON}/sid/clinic/{kept['clinic']['clinic_id']}/mrn|{kept['patient']['mrn']}"
    assert _count(hapi_base_url, "Patient", {"identifier": clinic}) == 1
