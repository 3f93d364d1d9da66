"""HAPI as a SMART Backend Services resource server (docs/targets.md#smart-on-the-test-hapi).

The test server serves ``/smart/fhir`` on the same data as ``/fhir``, behind an interceptor that
checks each bearer JWT against the keys of panva ``oidc-provider`` (the issuer named by its
``/.well-known/smart-configuration``), its expiry and audience, and the SMART scopes per
interaction. Our push and pull clients get their tokens from that provider by discovery; a token
without the write scope is refused by HAPI with 403 and the push stops on one line, having
written nothing; no token is a 401.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from click.testing import CliRunner

from fhir_iastm.cli import main
from fhir_iastm.smart.assertion import ASSERTION_TYPE, sign_assertion
from fhir_iastm.smart.scopes import PULL_NEEDS, PUSH_NEEDS, needed_scopes
from tests.integration.authz_server import oidc_provider
from tests.integration.e2e_support import batch
from tests.smart.helpers import DATA, key, public_text

pytestmark = pytest.mark.integration
CANON = "https://iastm.example.org/fhir"
ENV = {name: "" for name in ("IASTM_FHIR_TOKEN", "IASTM_FHIR_SMART_CLIENT_ID",
                             "IASTM_FHIR_SMART_KEY_FILE", "IASTM_FHIR_SMART_TOKEN_URL",
                             "IASTM_FHIR_SANDBOX", "IASTM_CANONICAL_BASE", "IASTM_TARGET_FILE")}
PUSH_V2 = needed_scopes(PUSH_NEEDS)
CLIENTS = [
    {"client_id": "hapi-push", "jwks": json.loads(public_text("ES384")),
     "scope": f"{PUSH_V2} {needed_scopes(PULL_NEEDS)}"},
    {"client_id": "hapi-push-v1", "jwks": json.loads(public_text("RS384")),
     "scope": needed_scopes(PUSH_NEEDS, v1=True)},
    {"client_id": "hapi-read", "jwks": json.loads(public_text("ES384")),
     "scope": "system/*.rs system/Patient.rs"},
]


@dataclass
class SmartHapi:
    base: str  # the protected endpoint
    open_base: str  # the same data, unprotected
    issuer: str

    def token(self, client_id: str, scope: str, alg: str = "ES384") -> str:
        """An access token straight from the provider's token endpoint."""
        assertion = sign_assertion(key(f"{alg}.private"), client_id=client_id,
                                   token_url=f"{self.issuer}/token", now=int(time.time()))
        answer = requests.post(f"{self.issuer}/token", timeout=30, data={
            "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, "scope": scope})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])


@pytest.fixture(scope="module")
def smart_hapi(hapi_base_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[SmartHapi]:
    """oidc-provider on the port the test HAPI trusts (HAPI_SMART_ISSUER, read from its
    discovery document), issuing JWT access tokens for HAPI's /smart/fhir."""
    root = hapi_base_url.rsplit("/fhir", 1)[0]
    base = f"{root}/smart/fhir"
    found = requests.get(f"{base}/.well-known/smart-configuration", timeout=30)
    assert found.status_code == 200, (
        f"{base} is not served: the HAPI at {hapi_base_url} predates tests/fhir_server's SMART "
        "endpoint (scripts/hapi stop && scripts/hapi start)")
    issuer = found.json()["issuer"]
    port = urlsplit(issuer).port
    assert port is not None
    with oidc_provider(tmp_path_factory.mktemp("authz"), CLIENTS, port=port,
                       resource=base) as started:
        assert started == issuer
        yield SmartHapi(base, hapi_base_url, issuer)


def _get(url: str, token: str | None = None) -> requests.Response:
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(url, headers=headers, timeout=30)


def _sessions(base: str, session_id: str) -> int:
    found = requests.get(f"{base}/Procedure", timeout=30, params={
        "identifier": f"{CANON}/sid/iastm-session|{session_id}", "_summary": "count"},
        headers={"Cache-Control": "no-cache"})
    assert found.status_code == 200, found.text
    return int(found.json()["total"])


def _records(tmp_path: Path, n: int = 1) -> tuple[list[dict[str, object]], Path]:
    records = batch(n)
    path = tmp_path / f"r-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records, path


def test_no_token_is_401_with_a_bearer_challenge(smart_hapi: SmartHapi) -> None:
    answer = _get(f"{smart_hapi.base}/Patient")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert _get(f"{smart_hapi.base}/metadata").status_code == 200  # discovery stays open
    assert _get(f"{smart_hapi.open_base}/Patient?_count=1").status_code == 200  # /fhir stays open


def test_a_token_hapi_cannot_verify_is_401(smart_hapi: SmartHapi) -> None:
    good = smart_hapi.token("hapi-read", "system/*.rs")
    assert _get(f"{smart_hapi.base}/Patient?_count=1", good).status_code == 200
    claims = jwt.decode(good, options={"verify_signature": False})
    # the same claims signed by a key the authorization server does not have
    forged = jwt.encode(claims, jwt.PyJWK(key("RS384.private")).key, algorithm="RS384",
                        headers={"typ": "at+jwt", "kid": claims.get("kid", "x")})
    assert _get(f"{smart_hapi.base}/Patient?_count=1", forged).status_code == 401
    expired = jwt.encode({**claims, "exp": int(time.time()) - 600}, "k" * 32)
    assert _get(f"{smart_hapi.base}/Patient?_count=1", expired).status_code == 401


def test_a_search_needs_the_search_scope(smart_hapi: SmartHapi) -> None:
    for _ in range(2):  # at least two Patients, so that a page of one has a next page
        made = requests.post(f"{smart_hapi.open_base}/Patient", json={"resourceType": "Patient"},
                             headers={"Content-Type": "application/fhir+json"}, timeout=30)
        assert made.status_code == 201, made.text
    narrow = smart_hapi.token("hapi-read", "system/Patient.rs")
    first = _get(f"{smart_hapi.base}/Patient?_count=1", narrow)
    assert first.status_code == 200
    [following] = [link["url"] for link in first.json()["link"] if link["relation"] == "next"]
    assert _get(following, narrow).status_code == 200  # its further pages
    assert _get(following).status_code == 401
    refused = _get(f"{smart_hapi.base}/Procedure?_count=1", narrow)
    assert refused.status_code == 403
    assert "system/Procedure.s" in refused.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(("client_id", "alg", "v1"), [("hapi-push", "ES384", False),
                                                      ("hapi-push-v1", "RS384", True)])
def test_smart_push_into_the_protected_hapi(smart_hapi: SmartHapi, tmp_path: Path,
                                            client_id: str, alg: str, v1: bool) -> None:
    """Discovery from HAPI's smart-configuration, a token from oidc-provider, a transaction per
    session that HAPI checks entry by entry against the granted scopes."""
    [record], path = _records(tmp_path)
    result = CliRunner().invoke(main, [
        "push", "--server", smart_hapi.base, "--smart-client-id", client_id,
        "--smart-key", str(DATA / f"{alg}.private.json"), "--canonical-base", CANON,
        "--smart-v1" if v1 else "--smart-v2", str(path)], env=ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "pushed"
    assert _sessions(smart_hapi.open_base, str(record["session_id"])) == 1


def test_smart_pull_from_the_protected_hapi(smart_hapi: SmartHapi, tmp_path: Path) -> None:
    [record], path = _records(tmp_path)
    smart = ["--server", smart_hapi.base, "--smart-client-id", "hapi-push", "--smart-key",
             str(DATA / "ES384.private.json"), "--canonical-base", CANON]
    pushed = CliRunner().invoke(main, ["push", *smart, str(path)], env=ENV)
    assert pushed.exit_code == 0, pushed.output
    pulled = CliRunner().invoke(main, ["pull", *smart, "--session", str(record["session_id"])],
                                env=ENV)
    assert pulled.exit_code == 0, pulled.output
    [line] = pulled.stdout.strip().splitlines()
    assert json.loads(line)["session_id"] == record["session_id"]


def test_a_token_without_the_write_scope_is_refused_by_hapi(smart_hapi: SmartHapi,
                                                            tmp_path: Path) -> None:
    """A read-only SMART token given as the target's bearer token: HAPI answers 403 to the
    session's transaction; the push stops on one line naming the server's answer, and nothing
    is written (the run's second session is not attempted)."""
    read_only = smart_hapi.token("hapi-read", "system/*.rs")
    records, path = _records(tmp_path, 2)
    result = CliRunner().invoke(main, [
        "push", "--server", smart_hapi.base, "--token", read_only, "--canonical-base", CANON,
        str(path)], env=ENV)
    assert result.exit_code == 3, result.output
    [line, summary] = result.stderr.strip().splitlines()
    assert line.startswith("Error: POST transaction: HTTP 403: The access token's scopes do not "
                           "allow POST "), line
    assert "(needs system/" in line
    assert line.endswith("; this and the remaining records were not sent"), line
    assert summary.startswith("push: 2 documents from 1 file: 2 not sent (server failure)")
    assert [json.loads(out)["status"] for out in result.stdout.splitlines()] == ["error"] * 2
    assert "eyJ" not in result.output
    for record in records:
        assert _sessions(smart_hapi.open_base, str(record["session_id"])) == 0


def test_a_token_hapi_refuses_is_replaced_once(smart_hapi: SmartHapi) -> None:
    """The client's cached token stops being accepted (as when it is revoked): HAPI's 401 makes
    the client fetch one new token and repeat the request."""
    from fhir_iastm.config import Settings
    from fhir_iastm.service import configured_client

    settings = Settings(fhir_base_url=smart_hapi.base, fhir_smart_client_id="hapi-push",
                        fhir_smart_key_file=DATA / "ES384.private.json",
                        fhir_smart_scopes_v1=False)
    client = configured_client(settings, "pull")
    assert client is not None
    assert client.tokens is not None
    assert client.search("Patient", [("_count", "1")])["resourceType"] == "Bundle"
    assert client.tokens.requests == 1
    client.tokens._token = smart_hapi.token("hapi-read", "system/*.rs")[:-4] + "AAAA"  # bad sig
    assert client.search("Patient", [("_count", "1")])["resourceType"] == "Bundle"
    assert client.tokens.requests == 2  # one refetch, one retry


def test_the_worker_with_a_token_hapi_refuses_dead_letters_nothing(
        smart_hapi: SmartHapi, tmp_path: Path) -> None:
    """The outbox worker pushing into /smart/fhir with a read-only token: HAPI's 403 pauses it;
    the entry keeps its attempts, nothing is dead-lettered or written."""
    from fhir_iastm.records import load_record
    from fhir_iastm.storage import Store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.migrate()
    [raw] = batch(1)
    store.save_record(load_record(raw), raw, actor="t")
    read_only = smart_hapi.token("hapi-read", "system/*.rs")
    result = CliRunner().invoke(main, [
        "worker", "--once", "--database-url", url, "--server", smart_hapi.base, "--token",
        read_only, "--canonical-base", CANON], env=ENV)
    assert result.exit_code == 3, result.output
    assert "eyJ" not in result.output
    stats = json.loads([line for line in result.stderr.splitlines()
                        if '"dead_lettered"' in line][-1])
    assert (stats["dead_lettered"], stats["circuit"]) == (0, "paused")
    sync = store.get_sync(str(raw["session_id"]))
    assert (sync.state, sync.attempts, sync.last_error_code) == ("queued", 0, "E_FHIR_AUTH")
    assert _sessions(smart_hapi.open_base, str(raw["session_id"])) == 0
    store.close()
