"""``keys generate``, the target credentials of ``push`` (bad configuration: one line, a non-zero
exit, nothing sent), the sandbox tag on writes and ``sandbox-clean``'s rounds and 429s
(docs/targets.md). The real servers are in tests/integration/test_smart_targets.py."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.client.auth import thumbprint
from fhir_iastm.errors import FhirUnavailableError
from fhir_iastm.sync.sandbox import clean, new_run_tag, tag_system
from tests.smart.helpers import key

BASE = "http://ehr.test/fhir"
EXAMPLE = (Path(__file__).parents[1] / "data" / "examples"
           / "good-03-plantar-fasciitis-hawkgrips-bruising.json")
#: Every auth variable empty: the test's own environment must not leak in.
CLEAN_ENV = {name: "" for name in ("IASTM_FHIR_TOKEN", "IASTM_FHIR_SMART_CLIENT_ID",
                                   "IASTM_FHIR_SMART_KEY_FILE", "IASTM_FHIR_SANDBOX")}


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_keys_generate_writes_a_0600_pem_and_the_public_jwks(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "generate", "--out", str(tmp_path), "--name", "ehr"])
    assert made.exit_code == 0, made.output
    told = json.loads(made.stdout)
    pem, jwks_path = tmp_path / "ehr.key.pem", tmp_path / "ehr.jwks.json"
    assert told["private_key"] == str(pem)
    assert told["alg"] == "ES384"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    [public] = json.loads(jwks_path.read_text())["keys"]
    assert public["kid"] == told["kid"] == thumbprint(public)
    assert public["alg"] == "ES384"
    assert public["crv"] == "P-384"
    assert "d" not in public
    again = runner.invoke(main, ["keys", "generate", "--out", str(tmp_path), "--name", "ehr"])
    assert again.exit_code == 1
    assert "exists" in again.stderr
    assert json.loads(jwks_path.read_text())["keys"] == [public]  # nothing overwritten


def test_keys_generate_add_to_keeps_the_old_key_for_rotation(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["keys", "generate", "--out", str(tmp_path), "--name", "old"])
    jwks = tmp_path / "old.jwks.json"
    made = runner.invoke(main, ["keys", "generate", "--alg", "RS384", "--out", str(tmp_path),
                                "--name", "new", "--add-to", str(jwks)])
    assert made.exit_code == 0, made.output
    keys = json.loads(jwks.read_text())["keys"]
    assert [k["alg"] for k in keys] == ["ES384", "RS384"]
    assert keys[1]["kid"] == json.loads(made.stdout)["kid"]
    assert not (tmp_path / "new.jwks.json").exists()


def _push(tmp_path: Path, *args: str, **env: str) -> Any:
    records = tmp_path / "r.jsonl"
    records.write_text(EXAMPLE.read_text().replace("\n", "") + "\n")
    return CliRunner().invoke(main, ["push", "--server", BASE, *args, str(records)],
                              env={**CLEAN_ENV, **env})


def test_push_with_a_key_without_kid_stops_before_any_request(
        tmp_path: Path, mock: responses.RequestsMock) -> None:
    jwk = {k: v for k, v in key("ES384.private").items() if k != "kid"}
    (tmp_path / "k.json").write_text(json.dumps(jwk))
    result = _push(tmp_path, "--smart-client-id", "c1", "--smart-key", str(tmp_path / "k.json"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: IASTM_FHIR_SMART_KEY_FILE: the key has no 'kid' (the server finds the public key "
        "to check our signature by it)"]
    assert result.stdout == ""
    assert len(mock.calls) == 0


def test_push_with_a_refused_scope_exits_3_with_one_line_and_writes_nothing(
        tmp_path: Path, mock: responses.RequestsMock) -> None:
    (tmp_path / "k.json").write_text(json.dumps({"keys": [key("RS384.private")]}))
    token_url = "http://auth.ehr.test/token"
    mock.post(token_url, status=400, json={"error": "invalid_scope",
                                           "error_description": "system/Procedure.cus"})
    result = _push(tmp_path, "--smart-key", str(tmp_path / "k.json"),
                   "--smart-client-id", "c1", "--smart-token-url", token_url)
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [
        f"Error: IASTM_FHIR_SMART_SCOPES_V1 / the client's registered scopes: the token endpoint "
        f"{token_url} refused: HTTP 400 invalid_scope: system/Procedure.cus"]
    assert [c.request.url for c in mock.calls] == [token_url]  # no FHIR request at all
    assert result.stdout == ""


def test_push_with_an_expired_certificate_from_the_environment(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.client.test_target_auth import _certificate
    cert, private = _certificate(tmp_path, datetime.now(UTC) - timedelta(hours=1))
    result = _push(tmp_path, IASTM_FHIR_CLIENT_CERT=str(cert), IASTM_FHIR_CLIENT_KEY=str(private))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: IASTM_FHIR_CLIENT_CERT: the certificate expired on")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_sandbox_tag_goes_on_every_written_resource(mock: responses.RequestsMock) -> None:
    tag = (tag_system("https://iastm.example.org/fhir"), new_run_tag())
    fhir = FhirClient(BASE, tag=tag)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "meta": {"tag": [{"code": "other"}]}},
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=a|b"}},
        {"resource": {"resourceType": "Procedure"}, "request": {"method": "PUT",
                                                                 "url": "Procedure/p1"}},
        {"request": {"method": "DELETE", "url": "Observation/o1"}}]}
    mock.post(BASE, json={"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "201 Created"}}, {"response": {"status": "200 OK"}},
        {"response": {"status": "204 No Content"}}]})
    fhir.transaction(bundle)
    sent = json.loads(mock.calls[0].request.body)["entry"]
    assert sent[0]["resource"]["meta"]["tag"] == [
        {"code": "other"}, {"system": tag[0], "code": tag[1]}]
    assert sent[1]["resource"]["meta"]["tag"] == [{"system": tag[0], "code": tag[1]}]
    assert "resource" not in sent[2]
    assert "meta" not in bundle["entry"][1]["resource"]  # the caller's bundle is not changed
    mock.put(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    fhir.update("Patient", "p1", {"resourceType": "Patient", "id": "p1"})
    assert json.loads(mock.calls[1].request.body)["meta"]["tag"][0]["code"] == tag[1]


def _searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


def test_sandbox_clean_deletes_in_rounds_and_reports_what_stays_referenced(
        mock: responses.RequestsMock) -> None:
    """Round 1: the session Procedure is still referenced by its adjunct Procedure (409), the
    adjunct goes, the Patient is referenced (409); round 2 the session Procedure goes; round 3
    makes no progress; a transaction deleting what is left is refused too: the Patient,
    referenced by an untagged resource, is kept, not forced."""
    empty = _searchset()
    for rtype in ("Provenance", "Observation", "Condition", "Encounter", "Practitioner",
                  "Organization", "Device"):
        mock.get(f"{BASE}/{rtype}", json=empty)
    main_, adjunct = ({"resourceType": "Procedure", "id": i} for i in ("pr1", "pr2"))
    mock.get(f"{BASE}/Procedure", json=_searchset(main_, adjunct))
    mock.get(f"{BASE}/Procedure", json=_searchset(main_))
    mock.get(f"{BASE}/Procedure", json=_searchset())
    mock.get(f"{BASE}/Patient", json=_searchset({"resourceType": "Patient", "id": "pa1"}))
    conflict = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "processing", "diagnostics": "HAPI-0550: referenced"}]}
    mock.delete(f"{BASE}/Procedure/pr1", status=409, json=conflict)
    mock.delete(f"{BASE}/Procedure/pr1", status=200, json={"resourceType": "OperationOutcome",
                                                           "issue": []})
    mock.delete(f"{BASE}/Procedure/pr2", status=204)
    mock.delete(f"{BASE}/Patient/pa1", status=409, json=conflict)
    mock.post(BASE, status=409, json=conflict)  # the last try: all that is left, together
    report = clean(FhirClient(BASE), "http://s", "run-1")
    assert report.to_json() == {"deleted": {"Procedure": 2}, "total": 2, "kept": ["Patient/pa1"]}
    searches = [c.request for c in mock.calls if c.request.method == "GET"]
    assert all("_tag=http%3A%2F%2Fs%7Crun-1" in r.url for r in searches)
    deletes = [c.request.url for c in mock.calls if c.request.method == "DELETE"]
    assert deletes.count(f"{BASE}/Procedure/pr1") == 2  # a 409 is not retried within a round
    assert deletes.count(f"{BASE}/Patient/pa1") == 3
    [together] = [json.loads(c.request.body) for c in mock.calls if c.request.method == "POST"]
    assert together["entry"] == [{"request": {"method": "DELETE", "url": "Patient/pa1"}}]


def test_a_429_retry_after_is_honoured_and_capped(mock: responses.RequestsMock) -> None:
    waits: list[float] = []
    fhir = FhirClient(BASE, retry=RetryPolicy(max_attempts=3, max_delay=10), sleep=waits.append)
    mock.delete(f"{BASE}/Observation/o1", status=429, headers={"Retry-After": "4"})
    mock.delete(f"{BASE}/Observation/o1", status=204)
    fhir.delete("Observation", "o1")
    assert waits == [4.0]  # never sooner than asked
    mock.replace(responses.DELETE, f"{BASE}/Observation/o1", status=429,
                 headers={"Retry-After": "120"})
    with pytest.raises(FhirUnavailableError) as info:
        fhir.delete("Observation", "o1")
    assert waits == [4.0]
    assert info.value.retry_after == 120.0


def test_a_refused_token_pauses_the_worker_and_dead_letters_nothing(
        tmp_path: Path, mock: responses.RequestsMock, make_record: Any) -> None:
    """The outbox worker with a SMART client whose token request is refused: its entries keep
    their attempts, nothing is dead-lettered, ``--once`` exits 3 saying why."""
    from fhir_iastm.storage import Store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.migrate()
    store.save_record(*make_record("S-AUTH-1", 1), actor="t")
    (tmp_path / "k.json").write_text(json.dumps({"keys": [key("ES384.private")]}))
    token_url = "http://auth.ehr.test/token"
    mock.post(token_url, status=401, json={"error": "invalid_client",
                                           "error_description": "unknown key"})
    result = CliRunner().invoke(main, [
        "worker", "--once", "--database-url", url, "--server", BASE, "--smart-client-id", "c1",
        "--smart-key", str(tmp_path / "k.json"), "--smart-token-url", token_url],
        env=CLEAN_ENV)
    assert result.exit_code == 3, result.output
    assert "refused the credentials" in result.stderr
    stats = json.loads([line for line in result.stderr.splitlines()
                        if line.startswith('{"pushed"') or '"dead_lettered"' in line][-1])
    assert stats["dead_lettered"] == 0
    assert stats["circuit"] == "paused"
    sync = store.get_sync("S-AUTH-1")
    assert (sync.state, sync.attempts, sync.last_error_code) == ("queued", 0, "E_FHIR_AUTH")
    assert [c.request.url for c in mock.calls] == [token_url]  # no FHIR request was made
    store.close()


def test_the_worker_stops_at_start_on_a_bad_key(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    result = CliRunner().invoke(main, [
        "worker", "--once", "--database-url", f"sqlite:///{tmp_path / 's.db'}", "--server", BASE,
        "--smart-client-id", "c1", "--smart-key", str(tmp_path / "k.pem")], env=CLEAN_ENV)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: IASTM_FHIR_SMART_KEY_FILE: not an unencrypted PEM "
                                    "private key")


def test_repeated_headers_and_basic_auth_reach_the_server(mock: responses.RequestsMock) -> None:
    empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    mock.get(f"{BASE}/Procedure", json=empty)
    result = CliRunner().invoke(main, [
        "pull", "--server", BASE, "--session", "S-1", "--basic-auth", "clinic:pw",
        "--header", "X-Api-Key: k1", "--header", "X-Tenant: t2; X-Api-Key: k2"], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    sent = mock.calls[0].request.headers
    assert sent["X-Api-Key"] == "k2"  # the last one given wins
    assert sent["X-Tenant"] == "t2"
    assert sent["Authorization"].startswith("Basic ")


def test_a_header_the_client_sets_itself_is_refused() -> None:
    result = CliRunner().invoke(main, ["pull", "--server", BASE, "--header",
                                       "Authorization: Bearer x"], env=CLEAN_ENV)
    assert result.exit_code == 2
    assert "header 1: Authorization is set by the client itself" in result.stderr


def test_sandbox_mode_makes_one_tag_per_run() -> None:
    import re
    from datetime import datetime as dt

    from fhir_iastm.config import Settings
    from fhir_iastm.service import sandbox_tag

    when = dt(2026, 12, 5, 4, 30, tzinfo=UTC)
    assert re.fullmatch(r"run-20261205T043000-[0-9a-f]{8}", new_run_tag(when))
    assert new_run_tag(when) != new_run_tag(when)
    assert sandbox_tag(Settings()) is None
    on = sandbox_tag(Settings(fhir_sandbox=True, canonical_base="https://x.example/fhir"))
    assert on is not None
    assert on[0] == "https://x.example/fhir/CodeSystem/iastm-sandbox-run"
    assert sandbox_tag(Settings(), "run-mine") == (
        "https://iastm.example.org/fhir/CodeSystem/iastm-sandbox-run", "run-mine")
