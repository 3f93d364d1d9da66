"""The Bulk Data client with the target's credentials (docs/targets.md#authentication), against
`responses` mocks: the static kinds on every request, and a SMART token the server refuses on
the kick-off, a status poll or a file download replaced once and the request repeated (a real
server does not refuse a fresh token halfway through an export)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import responses

from fhir_iastm.client.auth import TargetAuth
from fhir_iastm.client.bulk import BulkClient
from fhir_iastm.errors import FhirAuthError
from tests.client.test_target_auth import BASE, TOKEN_URL, TokenServer, smart

STATUS = "http://ehr.test/status/1"
FILE = "http://files.ehr.test/1/Patient.ndjson"
MANIFEST = {"transactionTime": "2026-12-05T00:00:00Z", "requiresAccessToken": True,
            "output": [{"type": "Patient", "url": FILE, "count": 1}], "error": []}
EXPIRED = {"resourceType": "OperationOutcome",
           "issue": [{"severity": "error", "code": "expired", "diagnostics": "token expired"}]}


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def bulk(auth: TargetAuth) -> BulkClient:
    return BulkClient(BASE, auth=auth, sleep=lambda _s: None)


def _export(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/$export", status=202, headers={"Content-Location": STATUS})
    mock.get(STATUS, json=MANIFEST)
    mock.get(FILE, body=json.dumps({"resourceType": "Patient", "id": "p1"}) + "\n",
             content_type="application/fhir+ndjson")
    mock.delete(STATUS, status=202)


def _run(client: BulkClient) -> list[str]:
    status = client.kick_off()
    manifest = client.wait(status)
    ids = [r["id"] for r in client.resources(manifest)]
    client.delete(status)
    return ids


def _bearers(mock: responses.RequestsMock) -> list[tuple[str, str | None]]:
    return [(c.request.url.split("?")[0], c.request.headers.get("Authorization"))
            for c in mock.calls if c.request.url != TOKEN_URL]


def test_static_credentials_go_with_every_request(mock: responses.RequestsMock) -> None:
    _export(mock)
    assert _run(bulk(TargetAuth(token="s3cret", headers={"X-Api-Key": "k1"}))) == ["p1"]
    assert [auth for _, auth in _bearers(mock)] == ["Bearer s3cret"] * 4
    assert all(c.request.headers["X-Api-Key"] == "k1" for c in mock.calls)


def test_basic_credentials(mock: responses.RequestsMock) -> None:
    _export(mock)
    assert _run(bulk(TargetAuth(basic=("user", "pw")))) == ["p1"]
    basic = "Basic " + base64.b64encode(b"user:pw").decode()
    assert {auth for _, auth in _bearers(mock)} == {basic}


@pytest.mark.parametrize("refused", [f"{BASE}/$export", STATUS, FILE])
def test_a_refused_smart_token_is_replaced_once(mock: responses.RequestsMock,
                                                refused: str) -> None:
    """The server refuses the first token at one step (401 there, an ``expired``
    OperationOutcome at the status poll): a second token is fetched, the step repeated with
    it, and the later steps use it."""
    tokens = TokenServer(mock, scope="system/*.rs")
    answer = ({"status": 400, "json": EXPIRED} if refused == STATUS else {"status": 401})
    method = responses.GET
    mock.add(method, refused, **answer)  # first answer: refused
    _export(mock)
    client = bulk(TargetAuth(smart=smart(purpose="bulk", scope="system/*.rs",
                                         token_url=TOKEN_URL)))
    assert _run(client) == ["p1"]
    assert len(tokens.forms) == 2
    seen = _bearers(mock)
    at = [url for url, _ in seen].index(refused)
    assert seen[at] == (refused, "Bearer t1")
    assert seen[at + 1] == (refused, "Bearer t2")
    assert all(auth == "Bearer t2" for _, auth in seen[at + 1:])
    assert all(auth == "Bearer t1" for _, auth in seen[:at])


def test_a_second_refusal_is_an_auth_error(mock: responses.RequestsMock) -> None:
    tokens = TokenServer(mock, scope="system/*.rs")
    mock.get(f"{BASE}/$export", status=401)
    mock.get(f"{BASE}/$export", status=401)
    client = bulk(TargetAuth(smart=smart(purpose="bulk", scope="system/*.rs",
                                         token_url=TOKEN_URL)))
    with pytest.raises(FhirAuthError, match="bulk kick-off: HTTP 401"):
        client.kick_off()
    assert len(tokens.forms) == 2  # one refetch, then no more


def test_a_static_token_is_not_retried(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/$export", status=401)
    with pytest.raises(FhirAuthError):
        bulk(TargetAuth(token="s3cret")).kick_off()
    assert len(mock.calls) == 1
