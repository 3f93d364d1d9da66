"""FhirClient against the real local HAPI FHIR JPA server (``scripts/hapi start``).

Every test uses identifier systems unique to its run, so the tests need no clean server.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.errors import FhirConflictError, FhirServerError

pytestmark = pytest.mark.integration


class CountingSession(requests.Session):
    """A real session that counts the HTTP requests it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.sent.append(method)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def session() -> CountingSession:
    return CountingSession()


@pytest.fixture
def client(hapi_base_url: str, session: CountingSession) -> FhirClient:
    return FhirClient(
        hapi_base_url, session=session, retry=RetryPolicy(max_attempts=3), sleep=lambda _s: None
    )


@pytest.fixture
def system() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient(system: str, value: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": value}],
        "gender": "unknown",
    }


def session_bundle(system: str) -> dict[str, Any]:
    """Patient POST + ifNoneExist, Procedure conditional PUT by identifier (docs/decisions.md#d5 and
    #d6)."""
    pat_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, system + '/patient')}"
    proc_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, system + '/procedure')}"
    procedure = {
        "resourceType": "Procedure",
        "status": "completed",
        "identifier": [{"system": system, "value": "session-1"}],
        "code": {"text": "IASTM"},
        "subject": {"reference": pat_url},
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": pat_url,
                "resource": patient(system, "mrn-1"),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={system}|mrn-1",
                },
            },
            {
                "fullUrl": proc_url,
                "resource": procedure,
                "request": {"method": "PUT", "url": f"Procedure?identifier={system}|session-1"},
            },
        ],
    }


def test_capabilities_are_parsed(client: FhirClient, session: CountingSession) -> None:
    caps = client.capabilities()
    assert client.capabilities() is caps
    assert session.sent == ["GET"]
    assert caps.fhir_version == "4.0.1"
    assert caps.supports_transaction
    for session_type in ("Encounter", "Condition", "Procedure", "Observation"):
        assert caps.conditional_update(session_type), session_type
    for shared_type in ("Patient", "Practitioner", "Organization"):
        assert caps.conditional_create(shared_type), shared_type
    assert caps.update_create("Provenance") is None  # HAPI 8.8 does not declare updateCreate
    assert {"identifier", "encounter", "patient"} <= caps.search_params("Procedure")
    assert caps.supports_revinclude("Procedure")


def test_put_by_client_id_creates_although_undeclared(client: FhirClient) -> None:
    """The updateCreate that docs/decisions.md#d13 needs for Provenance works on HAPI (not
    declared)."""
    new_id = f"iastm-{uuid.uuid4().hex[:20]}"
    created = client.update("Patient", new_id, {"resourceType": "Patient", "id": new_id})
    assert (created["id"], created["meta"]["versionId"]) == (new_id, "1")


def test_transaction_twice_keeps_one_resource_each(client: FhirClient, system: str) -> None:
    bundle = session_bundle(system)
    first = client.transaction(bundle)
    second = client.transaction(bundle)
    statuses = [[e["response"]["status"][:3] for e in r["entry"]] for r in (first, second)]
    assert statuses == [["201", "201"], ["200", "200"]]
    assert client.count("Patient", {"identifier": f"{system}|mrn-1"}) == 1
    assert client.count("Procedure", {"identifier": f"{system}|session-1"}) == 1


def test_conditional_create_twice_returns_the_same_resource(
    client: FhirClient, system: str
) -> None:
    query = f"identifier={system}|once"
    first = client.create("Patient", patient(system, "once"), if_none_exist=query)
    again = client.create("Patient", patient(system, "once"), if_none_exist=query)
    assert again["id"] == first["id"]
    assert client.count("Patient", {"identifier": f"{system}|once"}) == 1


def test_search_all_follows_paging(
    client: FhirClient, session: CountingSession, system: str
) -> None:
    created = {client.create("Patient", patient(system, f"v{i}"))["id"] for i in range(12)}
    session.sent.clear()
    pages = list(client.search_pages("Patient", [("identifier", f"{system}|"), ("_count", "5")]))
    found = [
        r["id"] for r in client.search_all("Patient", {"identifier": f"{system}|", "_count": "5"})
    ]
    assert [len(p.get("entry") or []) for p in pages] == [5, 5, 2]
    assert sorted(found) == sorted(created)
    assert len(session.sent) == 6


@pytest.mark.parametrize(
    "request_",
    [
        {"method": "PUT", "url": "Patient?identifier={system}|dup"},
        {"method": "POST", "url": "Patient", "ifNoneExist": "identifier={system}|dup"},
    ],
)
def test_two_matches_are_ambiguous(
    client: FhirClient, session: CountingSession, system: str, request_: dict[str, str]
) -> None:
    """Conditional PUT (HAPI-2207) and ifNoneExist (HAPI-0958) with 2 matches -> 412."""
    client.create("Patient", patient(system, "dup"))
    client.create("Patient", patient(system, "dup"))
    session.sent.clear()
    entry_request = {k: v.format(system=system) for k, v in request_.items()}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": patient(system, "dup"),
                "request": entry_request,
            }
        ],
    }
    with pytest.raises(FhirConflictError) as info:
        client.transaction(bundle)
    assert (info.value.status, info.value.code) == (412, "E_AMBIGUOUS_MATCH")
    assert info.value.issues[0].details == "E_AMBIGUOUS_MATCH"
    # HAPI 8.8: "HAPI-2207: Invalid match URL ... - Multiple resources match this search" (PUT),
    # "HAPI-0958: Failed to CREATE Patient with match URL ... because this search matched 2
    # resources" (ifNoneExist).
    diagnostics = info.value.issues[0].diagnostics or ""
    assert "Multiple resources match" in diagnostics or "matched 2 resources" in diagnostics
    assert session.sent == ["POST"]  # a 412 is never retried
    assert client.count("Patient", {"identifier": f"{system}|dup"}) == 2


def errors_of(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]


def test_validate_returns_operation_outcome(client: FhirClient) -> None:
    good = client.validate({"resourceType": "Patient", "gender": "female"})
    assert good["resourceType"] == "OperationOutcome"
    assert errors_of(good) == []
    broken = client.validate({"resourceType": "Patient", "contact": [{"gender": "male"}]})
    assert [i.get("expression") for i in errors_of(broken)] == [["Patient.contact[0]"]]  # pat-1


def test_validate_returns_the_outcome_of_a_400(client: FhirClient) -> None:
    unparseable = client.validate({"resourceType": "Patient", "gender": "robot"})
    assert unparseable["resourceType"] == "OperationOutcome"
    assert "robot" in errors_of(unparseable)[0]["diagnostics"]


def test_validate_sends_the_profile(client: FhirClient) -> None:
    core = client.validate(
        {"resourceType": "Patient"}, profile="http://hl7.org/fhir/StructureDefinition/Patient"
    )
    unknown = client.validate({"resourceType": "Patient"}, profile="https://nope.example/sd/x")
    assert errors_of(core) == []
    assert "https://nope.example/sd/x" in errors_of(unknown)[0]["diagnostics"]


def test_update_with_stale_if_match_is_a_conflict(
    client: FhirClient, session: CountingSession, system: str
) -> None:
    created = client.create("Patient", patient(system, "v"))
    pid, version = created["id"], created["meta"]["versionId"]
    updated = client.update("Patient", pid, {**created, "gender": "female"}, if_match=version)
    assert client.read("Patient", pid)["meta"]["versionId"] == updated["meta"]["versionId"]
    session.sent.clear()
    with pytest.raises(FhirConflictError) as info:
        client.update("Patient", pid, {**created, "gender": "male"}, if_match=version)
    assert info.value.status == 409  # HAPI: "HAPI-0550: HAPI-0989: ... not the current version"
    assert session.sent == ["PUT"]  # a stale version stays stale: no retry
    assert client.read("Patient", pid)["gender"] == "female"
    assert client.vread("Patient", pid, version)["gender"] == "unknown"


def test_transaction_entry_with_stale_if_match_is_a_conflict(
    client: FhirClient, session: CountingSession, system: str
) -> None:
    """docs/decisions.md#d7's guarded entry ``PUT Type/id`` + ``ifMatch``: stale -> conflict, no
    retry."""
    created = client.create("Patient", patient(system, "guarded"))
    pid = created["id"]
    client.update("Patient", pid, {**created, "gender": "female"})
    session.sent.clear()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{client.base_url}/Patient/{pid}",
                "resource": {**created, "gender": "male"},
                "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"1"'},
            }
        ],
    }
    with pytest.raises(FhirConflictError) as info:
        client.transaction(bundle)
    assert (info.value.status, info.value.code) == (409, "E_PUSH_REJECTED")
    assert session.sent == ["POST"]
    assert client.read("Patient", pid)["gender"] == "female"


def test_read_missing_resource_is_404(client: FhirClient) -> None:
    with pytest.raises(FhirServerError) as info:
        client.read("Patient", f"missing-{uuid.uuid4().hex[:12]}")
    assert (info.value.status, info.value.code) == (404, "E_NOT_FOUND")
