"""FhirClient against `responses` mocks: the failures a real server cannot easily produce."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError

from fhir_iastm.client import (
    FhirClient,
    RetryPolicy,
    error_for_status,
    is_idempotent_bundle,
    is_multiple_matches,
    parse_retry_after,
)
from fhir_iastm.errors import (
    FhirAuthError,
    FhirConflictError,
    FhirServerError,
    FhirUnavailableError,
)

BASE = "http://fhir.test/fhir"
MRN_QUERY = "https://iastm.example.org/fhir/sid/clinic/c1/mrn|MRN-SECRET-77"


@pytest.fixture
def fhir_server() -> Iterator[responses.RequestsMock]:
    """A `responses` mock that fails the test on any unmocked request."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        unmocked = [c for c in mock.calls if "Connection refused by Responses" in str(c.response)]
        if unmocked:
            pytest.fail(f"unmocked request: {unmocked[0].request.method} {unmocked[0].request.url}")


class FakeSleep:
    """Records the delays instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def client(sleep: FakeSleep) -> FhirClient:
    return FhirClient(BASE, token="tok-123", sleep=sleep)


def outcome(diagnostics: str, code: str = "processing", expression: str | None = None) -> dict:
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


PATIENT = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "3"}}
EMPTY_BUNDLE = {"resourceType": "Bundle", "type": "searchset", "total": 0}

CONDITIONAL_PUT = {"method": "PUT", "url": "Procedure?identifier=https://x/sid/iastm-session|s1"}
PLAIN_POST = {"method": "POST", "url": "Patient"}


def tx_bundle(*requests_: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"urn:uuid:{i}", "resource": {"resourceType": "Basic"}, "request": r}
            for i, r in enumerate(requests_)
        ],
    }


def tx_response(n: int) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": {"status": "201 Created"}} for _ in range(n)],
    }


# -- headers ---------------------------------------------------------------------------------


def test_read_sends_bearer_and_fhir_json_and_returns_resource(fhir_server, client):
    fhir_server.get(f"{BASE}/Patient/p1", json=PATIENT)
    assert client.read("Patient", "p1") == PATIENT
    headers = fhir_server.calls[0].request.headers
    assert headers["Authorization"] == "Bearer tok-123"
    assert headers["Accept"] == "application/fhir+json"


def test_writes_send_fhir_json_content_type(fhir_server, client):
    fhir_server.post(BASE, json=tx_response(1))
    client.transaction(tx_bundle(CONDITIONAL_PUT))
    request = fhir_server.calls[0].request
    assert request.headers["Content-Type"].startswith("application/fhir+json")
    assert json.loads(request.body)["type"] == "transaction"


def test_no_token_no_authorization_header(fhir_server, sleep):
    fhir_server.get(f"{BASE}/Patient/p1", json=PATIENT)
    FhirClient(BASE, sleep=sleep).read("Patient", "p1")
    assert "Authorization" not in fhir_server.calls[0].request.headers


def test_search_sends_no_cache_and_keeps_repeated_params(fhir_server, client):
    fhir_server.get(f"{BASE}/Procedure", json=EMPTY_BUNDLE)
    client.search(
        "Procedure", [("_include", "Procedure:encounter"), ("_include", "Procedure:patient")]
    )
    request = fhir_server.calls[0].request
    assert request.headers["Cache-Control"] == "no-cache"
    assert request.params["_include"] == ["Procedure:encounter", "Procedure:patient"]


def test_update_sends_weak_if_match_and_asks_for_the_resource(fhir_server, client):
    fhir_server.put(f"{BASE}/Patient/p1", json=PATIENT)
    client.update("Patient", "p1", PATIENT, if_match="3")
    assert fhir_server.calls[0].request.headers["If-Match"] == 'W/"3"'
    assert fhir_server.calls[0].request.headers["Prefer"] == "return=representation"


@pytest.mark.parametrize(
    ("resource_type", "resource_id"),
    [
        ("Patient", "../metadata"),
        ("Patient", "p1?_format=xml"),
        ("Patient", ""),
        ("Patient", "x" * 65),
        ("patient", "p1"),
        ("Patient/1", "p1"),
        ("", "p1"),
    ],
)
def test_paths_cannot_be_bent(client, resource_type, resource_id):
    with pytest.raises(ValueError, match="FHIR"):
        client.read(resource_type, resource_id)


def test_create_sends_if_none_exist(fhir_server, client):
    fhir_server.post(f"{BASE}/Patient", json=PATIENT, status=201)
    client.create("Patient", PATIENT, if_none_exist="identifier=sys|v")
    assert fhir_server.calls[0].request.headers["If-None-Exist"] == "identifier=sys|v"


# -- retries ---------------------------------------------------------------------------------


def test_read_timeout_on_get_is_retried(fhir_server, client, sleep):
    fhir_server.get(f"{BASE}/Patient/p1", body=requests.exceptions.ReadTimeout("slow"))
    fhir_server.get(f"{BASE}/Patient/p1", json=PATIENT)
    assert client.read("Patient", "p1")["id"] == "p1"
    assert len(fhir_server.calls) == 2
    assert sleep.calls == [0.5]


def test_connection_reset_on_get_is_retried(fhir_server, client, sleep):
    fhir_server.get(f"{BASE}/Patient/p1", body=requests.ConnectionError("reset by peer"))
    fhir_server.get(f"{BASE}/Patient/p1", body=requests.ConnectionError("reset by peer"))
    fhir_server.get(f"{BASE}/Patient/p1", json=PATIENT)
    assert client.read("Patient", "p1")["id"] == "p1"
    assert sleep.calls == [0.5, 1.0]


def test_timeout_forever_raises_unavailable_after_bound(fhir_server, client, sleep):
    fhir_server.get(f"{BASE}/Patient/p1", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(FhirUnavailableError, match="after 5 attempt") as info:
        client.read("Patient", "p1")
    assert isinstance(info.value.__cause__, requests.exceptions.ReadTimeout)
    assert len(fhir_server.calls) == 5


def test_503_retry_after_seconds_is_honoured(fhir_server, client, sleep):
    fhir_server.get(f"{BASE}/Patient/p1", status=503, headers={"Retry-After": "7"})
    fhir_server.get(f"{BASE}/Patient/p1", json=PATIENT)
    client.read("Patient", "p1")
    assert sleep.calls == [7.0]


def test_retry_after_beyond_max_delay_gives_up_at_once(fhir_server, client, sleep):
    fhir_server.get(
        f"{BASE}/Patient/p1",
        status=503,
        headers={"Retry-After": "3600"},
        json=outcome("maintenance"),
    )
    with pytest.raises(FhirUnavailableError) as info:
        client.read("Patient", "p1")
    assert (info.value.status, sleep.calls, len(fhir_server.calls)) == (503, [], 1)
    assert info.value.outcome["issue"][0]["diagnostics"] == "maintenance"
    assert info.value.retry_after == 3600.0  # for the outbox to schedule the next try
    assert [(i.diagnostics, i.details) for i in info.value.issues] == [
        ("maintenance", "E_FHIR_UNAVAILABLE")
    ]


def test_parse_retry_after_forms():
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2026, 11, 27, 12, 0, 42, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now) == 42.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0  # past -> no wait
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_429_is_retried_with_backoff(fhir_server, client, sleep):
    fhir_server.get(f"{BASE}/Patient/p1", status=429)
    fhir_server.get(f"{BASE}/Patient/p1", status=429)
    fhir_server.get(f"{BASE}/Patient/p1", json=PATIENT)
    client.read("Patient", "p1")
    assert sleep.calls == [0.5, 1.0]


def test_500_then_success_when_500_is_a_retry_status(fhir_server, sleep):
    retrying = FhirClient(BASE, sleep=sleep, retry=RetryPolicy(statuses=(500, 503)))
    fhir_server.get(f"{BASE}/Patient/p1", status=500, json=outcome("boom"))
    fhir_server.get(f"{BASE}/Patient/p1", json=PATIENT)
    assert retrying.read("Patient", "p1")["id"] == "p1"
    assert len(fhir_server.calls) == 2


def test_500_is_not_retried_by_default(fhir_server, client, sleep):
    fhir_server.get(f"{BASE}/Patient/p1", status=500, json=outcome("NullPointerException"))
    with pytest.raises(FhirServerError) as info:
        client.read("Patient", "p1")
    assert type(info.value) is FhirServerError
    assert (info.value.status, len(fhir_server.calls), sleep.calls) == (500, 1, [])


def test_500_forever_stops_at_bound_with_last_outcome(fhir_server, sleep):
    retrying = FhirClient(BASE, sleep=sleep, retry=RetryPolicy(statuses=(500,)))
    fhir_server.get(f"{BASE}/Patient/p1", status=500, json=outcome("still broken"))
    with pytest.raises(FhirUnavailableError, match="after 5 attempt") as info:
        retrying.read("Patient", "p1")
    assert len(fhir_server.calls) == 5
    assert sleep.calls == [0.5, 1.0, 2.0, 4.0]
    assert info.value.status == 500
    assert info.value.outcome["issue"][0]["diagnostics"] == "still broken"
    assert [(i.diagnostics, i.details) for i in info.value.issues] == [
        ("still broken", "E_FHIR_UNAVAILABLE")
    ]
    assert info.value.retry_after is None


def test_backoff_is_capped_by_max_delay(fhir_server, sleep):
    policy = RetryPolicy(max_attempts=4, base_delay=10, max_delay=15)
    fhir_server.get(f"{BASE}/Patient/p1", status=502)
    with pytest.raises(FhirUnavailableError):
        FhirClient(BASE, sleep=sleep, retry=policy).read("Patient", "p1")
    assert sleep.calls == [10.0, 15.0, 15.0]


def test_409_on_idempotent_transaction_is_retried(fhir_server, client, sleep):
    fhir_server.post(BASE, status=409, json=outcome("HAPI-0550: version conflict", "conflict"))
    fhir_server.post(BASE, json=tx_response(1))
    client.transaction(tx_bundle(CONDITIONAL_PUT))
    assert len(fhir_server.calls) == 2


def test_409_with_if_match_is_not_retried(fhir_server, client, sleep):
    fhir_server.put(f"{BASE}/Patient/p1", status=409, json=outcome("not the current version"))
    with pytest.raises(FhirConflictError) as info:
        client.update("Patient", "p1", PATIENT, if_match='W/"2"')
    assert (info.value.code, info.value.status) == ("E_PUSH_REJECTED", 409)
    assert len(fhir_server.calls) == 1


def test_non_idempotent_transaction_is_not_retried_on_timeout(fhir_server, client, sleep):
    fhir_server.post(BASE, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(FhirUnavailableError, match="not retried") as info:
        client.transaction(tx_bundle(CONDITIONAL_PUT, PLAIN_POST))
    assert isinstance(info.value.__cause__, requests.exceptions.ReadTimeout)
    assert (len(fhir_server.calls), sleep.calls) == (1, [])


def test_non_idempotent_transaction_is_not_retried_on_503(fhir_server, client, sleep):
    fhir_server.post(BASE, status=503)
    with pytest.raises(FhirUnavailableError):
        client.transaction(tx_bundle(PLAIN_POST))
    assert len(fhir_server.calls) == 1


def test_refused_connection_is_retried_even_for_post(fhir_server, client, sleep):
    refused = requests.ConnectionError(
        MaxRetryError(None, BASE, reason=NewConnectionError(None, "Connection refused"))
    )
    fhir_server.post(BASE, body=refused)
    fhir_server.post(BASE, json=tx_response(1))
    client.transaction(tx_bundle(PLAIN_POST))
    assert len(fhir_server.calls) == 2


def test_explicit_idempotent_false_disables_retry(fhir_server, client, sleep):
    fhir_server.post(BASE, status=503)
    with pytest.raises(FhirUnavailableError):
        client.transaction(tx_bundle(CONDITIONAL_PUT), idempotent=False)
    assert len(fhir_server.calls) == 1


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (CONDITIONAL_PUT, True),
        ({"method": "PUT", "url": "Provenance/5f0c7a9e-1b2c-5d3e-8f4a-0b1c2d3e4f5a"}, True),
        ({"method": "POST", "url": "Patient", "ifNoneExist": "identifier=s|v"}, True),
        ({"method": "GET", "url": "Patient?identifier=s|v"}, True),
        (PLAIN_POST, False),
        ({"method": "PUT", "url": "Procedure?status=completed"}, False),
        ({"method": "DELETE", "url": "Procedure/1"}, False),
        ({"method": "PATCH", "url": "Procedure/1"}, False),
    ],
)
def test_is_idempotent_bundle(request_, expected):
    assert is_idempotent_bundle(tx_bundle(CONDITIONAL_PUT, request_)) is expected


# -- reply classification --------------------------------------------------------------------


def test_torn_json_body_on_2xx_is_an_error(fhir_server, client):
    fhir_server.post(
        BASE,
        body='{"resourceType": "Bundle", "type": "transaction-resp',
        content_type="application/fhir+json",
    )
    with pytest.raises(FhirServerError, match="malformed response") as info:
        client.transaction(tx_bundle(CONDITIONAL_PUT))
    assert type(info.value) is FhirServerError
    assert isinstance(info.value.__cause__, ValueError)


def test_transaction_response_must_confirm_every_entry(fhir_server, client):
    fhir_server.post(BASE, json=tx_response(1))
    with pytest.raises(FhirServerError, match="malformed response"):
        client.transaction(tx_bundle(CONDITIONAL_PUT, CONDITIONAL_PUT))


@pytest.mark.parametrize(
    "entries",
    [["not an entry"], [{"response": "201"}], [{"response": {"status": "400 Bad Request"}}], {}],
)
def test_transaction_response_entries_must_be_2xx(fhir_server, client, entries):
    reply = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    fhir_server.post(BASE, json=reply)
    with pytest.raises(FhirServerError, match="malformed response"):
        client.transaction(tx_bundle(CONDITIONAL_PUT))


def test_wrong_resource_type_on_2xx_is_an_error(fhir_server, client):
    fhir_server.get(f"{BASE}/Patient/p1", json=outcome("all ok"))
    with pytest.raises(FhirServerError, match="expected Patient"):
        client.read("Patient", "p1")


# The wordings of HAPI FHIR 8.8.0, copied from the local server (tests/integration).
HAPI_MULTIPLE = (
    'HAPI-2207: Invalid match URL "Procedure?identifier=https://x/sid/iastm-session|s1"'
    " - Multiple resources match this search"
)
HAPI_MULTIPLE_CREATE = (
    'HAPI-0958: Failed to CREATE Patient with match URL "identifier=s|v" '
    "because this search matched 2 resources"
)
HAPI_MULTIPLE_UPDATE = (
    "HAPI-0988: Failed to UPDATE Patient with match URL "
    '"Patient?identifier=s|v" because this search matched 2 resources'
)


@pytest.mark.parametrize(
    "diagnostics",
    [
        HAPI_MULTIPLE,
        HAPI_MULTIPLE_CREATE,
        HAPI_MULTIPLE_UPDATE,
        "Failed to conditionally update the resource because "
        "this search matched 2 or more resources",
    ],
)
def test_is_multiple_matches_knows_server_wordings(diagnostics):
    assert is_multiple_matches(outcome(diagnostics))


@pytest.mark.parametrize(
    "diagnostics",
    [
        "HAPI-0550: HAPI-0989: Trying to update Patient/1/_history/1 but this is not the current "
        "version",
        "this search matched 1 resources",
        "Resource contains 2 errors",
    ],
)
def test_is_multiple_matches_rejects_other_wordings(diagnostics):
    assert not is_multiple_matches(outcome(diagnostics))


def test_412_multiple_matches_is_ambiguous_match(fhir_server, client):
    fhir_server.post(BASE, status=412, json=outcome(HAPI_MULTIPLE))
    with pytest.raises(FhirConflictError) as info:
        client.transaction(tx_bundle(CONDITIONAL_PUT))
    error = info.value
    assert (error.code, error.status, len(fhir_server.calls)) == ("E_AMBIGUOUS_MATCH", 412, 1)
    assert [(i.severity, i.code, i.details) for i in error.issues] == [
        ("error", "processing", "E_AMBIGUOUS_MATCH")
    ]
    assert error.issues[0].diagnostics == HAPI_MULTIPLE


def test_412_issue_code_multiple_matches_is_ambiguous(fhir_server, client):
    fhir_server.post(BASE, status=412, json=outcome("several", code="multiple-matches"))
    with pytest.raises(FhirConflictError) as info:
        client.transaction(tx_bundle(CONDITIONAL_PUT))
    assert info.value.code == "E_AMBIGUOUS_MATCH"


def test_412_other_is_push_rejected_with_outcome_kept(fhir_server, client):
    body = outcome("HAPI-0989: Version 2 is not the current version", code="conflict")
    fhir_server.post(BASE, status=412, json=body)
    with pytest.raises(FhirConflictError) as info:
        client.transaction(tx_bundle(CONDITIONAL_PUT))
    assert info.value.code == "E_PUSH_REJECTED"
    assert info.value.outcome == body
    assert info.value.issues[0].details == "E_PUSH_REJECTED"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
ISSUE = st.fixed_dictionaries(
    {},
    optional={
        k: JSON for k in ("severity", "code", "diagnostics", "details", "expression", "location")
    },
)


@given(
    status=st.integers(min_value=300, max_value=599),
    issues=st.lists(ISSUE | JSON, max_size=3) | JSON,
)
def test_error_for_status_survives_any_outcome_shape(status, issues):
    error = error_for_status(status, {"resourceType": "OperationOutcome", "issue": issues})
    assert isinstance(error, FhirServerError)
    assert error.status == status
    assert any(i.is_error for i in error.issues)
    assert error.operation_outcome()["resourceType"] == "OperationOutcome"


def test_401_is_auth_error_without_retry(fhir_server, client, sleep):
    fhir_server.get(f"{BASE}/Patient/p1", status=401)
    with pytest.raises(FhirAuthError) as info:
        client.read("Patient", "p1")
    assert (info.value.status, len(fhir_server.calls), sleep.calls) == (401, 1, [])
    assert info.value.issues[0].details == "E_FHIR_AUTH"


def test_422_outcome_issues_are_translated(fhir_server, client):
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invariant",
                "diagnostics": "iastm-proc-1 failed",
                "expression": ["Procedure.performed"],
            },
            {
                "severity": "warning",
                "code": "code-invalid",
                "details": {"text": "unknown system"},
                "location": ["Procedure.code"],
            },
        ],
    }
    fhir_server.post(f"{BASE}/Procedure", status=422, json=body)
    with pytest.raises(FhirServerError) as info:
        client.create("Procedure", {"resourceType": "Procedure"})
    assert type(info.value) is FhirServerError
    assert [
        (i.severity, i.code, i.expression, i.diagnostics, i.details) for i in info.value.issues
    ] == [
        ("error", "invariant", "Procedure.performed", "iastm-proc-1 failed", "E_FHIR_SERVER"),
        ("warning", "code-invalid", "Procedure.code", "unknown system", None),
    ]


def test_404_keeps_status_and_not_found_code(fhir_server, client):
    fhir_server.get(f"{BASE}/Patient/nope", status=404, json=outcome("gone", code="not-found"))
    with pytest.raises(FhirServerError) as info:
        client.read("Patient", "nope")
    assert (info.value.status, info.value.code) == (404, "E_NOT_FOUND")


def test_validate_returns_outcome_served_with_412(fhir_server, client):
    body = outcome("Procedure.status: minimum required = 1", code="required")
    fhir_server.post(
        f"{BASE}/Procedure/$validate",
        status=412,
        json=body,
        match=[matchers.query_param_matcher({"profile": "https://p/iastm"})],
    )
    assert client.validate({"resourceType": "Procedure"}, profile="https://p/iastm") == body


# -- paging and counts -----------------------------------------------------------------------


def page(ids: list[str], next_url: str | None) -> dict:
    links = [{"relation": "next", "url": next_url}] if next_url else []
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": {"resourceType": "Patient", "id": i}} for i in ids],
    }


def test_next_link_under_base_is_followed(fhir_server, client):
    next_url = f"{BASE}?_getpages=abc&_getpagesoffset=2&_count=2"
    fhir_server.get(f"{BASE}/Patient", json=page(["a", "b"], next_url))
    fhir_server.get(
        BASE,
        json=page(["c"], None),
        match=[
            matchers.query_param_matcher(
                {"_getpages": "abc", "_getpagesoffset": "2", "_count": "2"}
            )
        ],
    )
    ids = [r["id"] for r in client.search_all("Patient", {"_count": "2"})]
    assert ids == ["a", "b", "c"]
    assert fhir_server.calls[1].request.headers["Cache-Control"] == "no-cache"
    assert fhir_server.calls[1].request.headers["Authorization"] == "Bearer tok-123"


def test_relative_next_link_is_resolved_against_base(fhir_server, client):
    fhir_server.get(
        f"{BASE}/Patient",
        json=page(["a"], "Patient?page=2"),
        match=[matchers.query_param_matcher({})],
    )
    fhir_server.get(
        f"{BASE}/Patient",
        json=page(["b"], None),
        match=[matchers.query_param_matcher({"page": "2"})],
    )
    assert [r["id"] for r in client.search_all("Patient", {})] == ["a", "b"]


def test_looping_next_links_are_refused(fhir_server, client):
    loop = f"{BASE}/Patient?page=2"
    fhir_server.get(f"{BASE}/Patient", json=page(["a"], loop))
    with pytest.raises(FhirServerError, match="loop"):
        list(client.search_all("Patient", {}))
    assert len(fhir_server.calls) == 2  # the first page, then the looping link once


@pytest.mark.parametrize(
    "next_url",
    [
        "http://evil.test/fhir?_getpages=abc",
        "https://fhir.test/fhir?_getpages=abc",
        "http://fhir.test:8080/fhir?_getpages=abc",
        "http://fhir.test/fhirx?_getpages=abc",
        "http://fhir.test/other/Patient?page=2",
    ],
)
def test_next_link_outside_base_is_refused(fhir_server, client, next_url):
    fhir_server.get(f"{BASE}/Patient", json=page(["a"], next_url))
    with pytest.raises(FhirServerError, match="outside the base URL"):
        list(client.search_all("Patient", {}))
    assert len(fhir_server.calls) == 1


def test_count_uses_summary_count(fhir_server, client):
    fhir_server.get(
        f"{BASE}/Procedure",
        json={**EMPTY_BUNDLE, "total": 3},
        match=[matchers.query_param_matcher({"identifier": "s|1", "_summary": "count"})],
    )
    assert client.count("Procedure", {"identifier": "s|1"}) == 3


def test_count_without_total_is_an_error(fhir_server, client):
    fhir_server.get(f"{BASE}/Procedure", json={"resourceType": "Bundle", "type": "searchset"})
    with pytest.raises(FhirServerError, match="Bundle.total"):
        client.count("Procedure", {})


# -- capabilities, guards, logs --------------------------------------------------------------

CAPABILITY = {
    "resourceType": "CapabilityStatement",
    "fhirVersion": "4.0.1",
    "rest": [
        {
            "mode": "server",
            "interaction": [{"code": "transaction"}],
            "searchParam": [{"name": "_id", "type": "token"}],
            "resource": [
                {
                    "type": "Procedure",
                    "conditionalUpdate": True,
                    "conditionalCreate": False,
                    "searchParam": [{"name": "identifier", "type": "token"}],
                    "searchRevInclude": ["Observation:part-of"],
                },
                {"type": "Provenance", "updateCreate": True},
            ],
        }
    ],
}


def test_capabilities_read_once_and_parsed(fhir_server, client):
    fhir_server.get(f"{BASE}/metadata", json=CAPABILITY)
    caps = client.capabilities()
    assert client.capabilities() is caps
    assert len(fhir_server.calls) == 1
    assert caps.supports_transaction
    assert caps.fhir_version == "4.0.1"
    assert caps.conditional_update("Procedure")
    assert not caps.conditional_create("Procedure")
    assert caps.update_create("Provenance") is True
    assert caps.update_create("Procedure") is None  # not declared
    assert caps.conditional_create("Procedure") is False
    assert caps.search_params("Procedure") == {"identifier", "_id"}
    assert caps.supports_revinclude("Procedure")
    assert not caps.supports_revinclude("Patient")
    assert caps.conditional_update("Observation") is None


def test_transaction_refuses_non_transaction_bundle(client):
    with pytest.raises(ValueError, match="transaction"):
        client.transaction({"resourceType": "Bundle", "type": "batch"})


def test_post_conformance_puts_by_id_and_refuses_other_types(fhir_server, client):
    profile = {"resourceType": "StructureDefinition", "id": "iastm-procedure"}
    fhir_server.put(f"{BASE}/StructureDefinition/iastm-procedure", json=profile)
    assert client.post_conformance(profile) == profile
    with pytest.raises(ValueError, match="conformance"):
        client.post_conformance(PATIENT)


def test_logs_carry_no_identifier_values(fhir_server, client, caplog):
    caplog.set_level(logging.DEBUG, logger="fhir_iastm.client")
    fhir_server.get(f"{BASE}/Patient", status=503, json=outcome(MRN_QUERY))
    fhir_server.get(f"{BASE}/Patient", json=EMPTY_BUNDLE)
    client.search("Patient", {"identifier": MRN_QUERY})
    assert "GET Patient -> 503 attempt=1" in caplog.text
    assert "GET Patient -> 200 attempt=2" in caplog.text
    assert "MRN-SECRET" not in caplog.text
    assert "fhir.test" not in caplog.text


def test_transport_failure_logs_exception_name(fhir_server, client, caplog):
    caplog.set_level(logging.INFO, logger="fhir_iastm.client")
    fhir_server.get(f"{BASE}/Patient/p1", body=requests.exceptions.ReadTimeout("slow"))
    fhir_server.get(f"{BASE}/Patient/p1", json=PATIENT)
    client.read("Patient", "p1")
    assert "GET Patient -> ReadTimeout attempt=1" in caplog.text


def test_pure_rules_import_no_http_library():
    code = (
        "import sys, fhir_iastm.client.policy, fhir_iastm.client.capabilities; "
        "print(sorted(m for m in ('requests', 'urllib3', 'flask') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_invalid_base_url_is_a_config_error():
    from fhir_iastm.errors import ConfigError

    with pytest.raises(ConfigError):
        FhirClient("fhir.test/fhir")
