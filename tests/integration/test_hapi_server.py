"""The local HAPI FHIR R4 server (tests/fhir_server, started by scripts/hapi) behaves as the push
design (docs/push.md, docs/validation.md#stages, docs/validation.md#oracle) needs. Plain
``requests``: these tests check the server, not our
client.

Every test keys its data on fresh identifiers, so the tests can run again against a server that is
kept running between sessions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

FHIR_JSON = "application/fhir+json"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
NO_CACHE = {"Accept": FHIR_JSON, "Cache-Control": "no-cache"}
TIMEOUT = 120  # seconds; the first $validate warms the validator up

PATIENT_SYSTEM = "urn:oid:2.999.1.1"  # test-only identifier systems
PROCEDURE_SYSTEM = "urn:oid:2.999.1.2"
EX = "http://example.org/fhir-iastm-test"
PATIENT_PROFILE = f"{EX}/StructureDefinition/test-patient-birthdate"
PROCEDURE_PROFILE = f"{EX}/StructureDefinition/test-procedure-tool"
TOOL_CS = f"{EX}/CodeSystem/test-tools"
TOOL_VS = f"{EX}/ValueSet/test-tools"


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _count(http: requests.Session, base: str, rtype: str, identifier: str) -> int:
    r = http.get(
        f"{base}/{rtype}",
        params={"identifier": identifier, "_summary": "count"},
        headers=NO_CACHE,
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    total = r.json()["total"]
    assert isinstance(total, int)
    return total


def _issues(outcome: dict[str, Any], severity: str) -> list[dict[str, Any]]:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [i for i in outcome.get("issue", []) if i["severity"] == severity]


def _put(http: requests.Session, base: str, resource: dict[str, Any]) -> requests.Response:
    r = http.put(
        f"{base}/{resource['resourceType']}/{resource['id']}",
        json=resource,
        headers=HEADERS,
        timeout=TIMEOUT,
    )
    assert r.status_code in (200, 201), r.text
    return r


def _validate(
    http: requests.Session, base: str, resource: dict[str, Any], profile: str
) -> dict[str, Any]:
    r = http.post(
        f"{base}/{resource['resourceType']}/$validate",
        params={"profile": profile},
        json=resource,
        headers=HEADERS,
        timeout=TIMEOUT,
    )
    # HAPI answers 200 with the OperationOutcome whether or not the resource is valid
    # (412 is also allowed by the spec for an invalid one).
    assert r.status_code in (200, 412), r.text
    outcome: dict[str, Any] = r.json()
    return outcome


# (a) ------------------------------------------------------------------------------------------


def test_metadata_is_r4_capability_statement_with_transaction_and_conditional_update(
    http: requests.Session, hapi_base_url: str
) -> None:
    r = http.get(f"{hapi_base_url}/metadata", headers={"Accept": FHIR_JSON}, timeout=TIMEOUT)
    assert r.status_code == 200
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    rest = next(x for x in cs["rest"] if x["mode"] == "server")
    assert "transaction" in {i["code"] for i in rest.get("interaction", [])}
    by_type = {res["type"]: res for res in rest["resource"]}
    for rtype in (
        "Patient",
        "Procedure",
        "Encounter",
        "Observation",
        "Condition",
        "Practitioner",
        "Organization",
        "StructureDefinition",
        "ValueSet",
        "CodeSystem",
    ):
        assert rtype in by_type, rtype
    for rtype in ("Procedure", "Encounter", "Observation", "Condition"):
        assert by_type[rtype].get("conditionalUpdate") is True, rtype
        assert "update" in {i["code"] for i in by_type[rtype]["interaction"]}
    for rtype in ("Patient", "Practitioner", "Organization"):
        assert by_type[rtype].get("conditionalCreate") is True, rtype
    validate_ops = {op["name"] for op in by_type["Patient"].get("operation", [])}
    assert "validate" in validate_ops


# (b) ------------------------------------------------------------------------------------------


def _session_bundle(patient_value: str, procedure_value: str, note: str) -> dict[str, Any]:
    patient_full_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, patient_value)}"
    procedure_full_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, procedure_value)}"
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_full_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": PATIENT_SYSTEM, "value": patient_value}],
                },
                # bare spec form, as our push sends it (docs/push.md)
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={PATIENT_SYSTEM}|{patient_value}",
                },
            },
            {
                "fullUrl": procedure_full_url,
                "resource": {
                    "resourceType": "Procedure",
                    "identifier": [{"system": PROCEDURE_SYSTEM, "value": procedure_value}],
                    "status": "completed",
                    "code": {"text": "IASTM"},
                    "subject": {"reference": patient_full_url},
                    "note": [{"text": note}],
                },
                "request": {
                    "method": "PUT",
                    "url": f"Procedure?identifier={PROCEDURE_SYSTEM}|{procedure_value}",
                },
            },
        ],
    }


def _post_transaction(http: requests.Session, base: str, bundle: dict[str, Any]) -> dict[str, Any]:
    r = http.post(base, json=bundle, headers=HEADERS, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "transaction-response"
    assert len(body["entry"]) == len(bundle["entry"])
    return body


def test_transaction_conditional_create_and_update_is_idempotent(
    http: requests.Session, hapi_base_url: str
) -> None:
    tag = uuid.uuid4().hex
    patient_value, procedure_value = f"pat-{tag}", f"session-{tag}-procedure"
    patient_ident = f"{PATIENT_SYSTEM}|{patient_value}"
    procedure_ident = f"{PROCEDURE_SYSTEM}|{procedure_value}"

    first = _post_transaction(
        http, hapi_base_url, _session_bundle(patient_value, procedure_value, "v1")
    )
    assert [e["response"]["status"].split()[0] for e in first["entry"]] == ["201", "201"]
    patient_loc = first["entry"][0]["response"]["location"]  # Patient/<id>/_history/1
    procedure_loc = first["entry"][1]["response"]["location"]
    patient_id = patient_loc.split("/")[1]
    procedure_id = procedure_loc.split("/")[1]

    # A retry of the byte-identical Bundle: matched, nothing new.
    second = _post_transaction(
        http, hapi_base_url, _session_bundle(patient_value, procedure_value, "v1")
    )
    assert [e["response"]["status"].split()[0] for e in second["entry"]] == ["200", "200"]
    assert second["entry"][0]["response"]["location"].split("/")[1] == patient_id
    assert second["entry"][1]["response"]["location"].split("/")[1] == procedure_id

    assert _count(http, hapi_base_url, "Patient", patient_ident) == 1
    assert _count(http, hapi_base_url, "Procedure", procedure_ident) == 1

    # The urn:uuid reference was rewritten to the real Patient id.
    proc = http.get(
        f"{hapi_base_url}/Procedure/{procedure_id}", headers=NO_CACHE, timeout=TIMEOUT
    ).json()
    assert proc["subject"]["reference"] == f"Patient/{patient_id}"

    # A newer version of the session updates the same Procedure in place (version 2),
    # still one of each.
    third = _post_transaction(
        http, hapi_base_url, _session_bundle(patient_value, procedure_value, "v2")
    )
    assert third["entry"][1]["response"]["location"].split("/")[1] == procedure_id
    proc = http.get(
        f"{hapi_base_url}/Procedure/{procedure_id}", headers=NO_CACHE, timeout=TIMEOUT
    ).json()
    assert proc["note"] == [{"text": "v2"}]
    assert proc["meta"]["versionId"] == "2"
    assert _count(http, hapi_base_url, "Patient", patient_ident) == 1
    assert _count(http, hapi_base_url, "Procedure", procedure_ident) == 1


def test_search_results_are_not_reused_between_searches(
    http: requests.Session, hapi_base_url: str
) -> None:
    """Search-result caching is off: a plain search (no Cache-Control) sees a new write."""
    value = f"recount-{uuid.uuid4().hex}"
    params = {"identifier": f"{PATIENT_SYSTEM}|{value}", "_summary": "count"}

    def plain_count() -> int:
        r = http.get(
            f"{hapi_base_url}/Patient",
            params=params,
            headers={"Accept": FHIR_JSON},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        total: int = r.json()["total"]
        return total

    assert plain_count() == 0
    r = http.post(
        f"{hapi_base_url}/Patient",
        headers=HEADERS,
        timeout=TIMEOUT,
        json={
            "resourceType": "Patient",
            "identifier": [{"system": PATIENT_SYSTEM, "value": value}],
        },
    )
    assert r.status_code == 201, r.text
    assert plain_count() == 1


# (c) ------------------------------------------------------------------------------------------


def test_non_numeric_client_id_put_creates_then_updates(
    http: requests.Session, hapi_base_url: str
) -> None:
    rid = f"iastm-{uuid.uuid4().hex[:16]}"
    body: dict[str, Any] = {"resourceType": "Patient", "id": rid, "active": True}
    r = http.put(f"{hapi_base_url}/Patient/{rid}", json=body, headers=HEADERS, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == rid
    r = http.put(
        f"{hapi_base_url}/Patient/{rid}",
        json={**body, "active": False},
        headers=HEADERS,
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    got = http.get(f"{hapi_base_url}/Patient/{rid}", headers=NO_CACHE, timeout=TIMEOUT)
    assert got.status_code == 200
    assert got.json()["id"] == rid
    assert got.json()["active"] is False
    assert got.json()["meta"]["versionId"] == "2"


def test_external_references_are_accepted(http: requests.Session, hapi_base_url: str) -> None:
    body: dict[str, Any] = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"text": "IASTM"},
        "subject": {"reference": "https://other.example.org/fhir/Patient/abc"},
    }
    r = http.post(f"{hapi_base_url}/Procedure", json=body, headers=HEADERS, timeout=TIMEOUT)
    assert r.status_code == 201, r.text


# (d) ------------------------------------------------------------------------------------------

PATIENT_SD: dict[str, Any] = {
    "resourceType": "StructureDefinition",
    "id": "fhir-iastm-test-patient-birthdate",
    "url": PATIENT_PROFILE,
    "name": "FhirIastmTestPatientBirthDate",
    "status": "active",
    "fhirVersion": "4.0.1",
    "kind": "resource",
    "abstract": False,
    "type": "Patient",
    "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
    "derivation": "constraint",
    # differential only: the server generates the snapshot
    "differential": {
        "element": [{"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1}]
    },
}

TOOL_CODESYSTEM: dict[str, Any] = {
    "resourceType": "CodeSystem",
    "id": "fhir-iastm-test-tools",
    "url": TOOL_CS,
    "status": "active",
    "content": "complete",
    "concept": [{"code": "blade", "display": "Blade"}, {"code": "edge", "display": "Edge"}],
}
TOOL_VALUESET: dict[str, Any] = {
    "resourceType": "ValueSet",
    "id": "fhir-iastm-test-tools",
    "url": TOOL_VS,
    "status": "active",
    "compose": {"include": [{"system": TOOL_CS}]},
}
PROCEDURE_SD: dict[str, Any] = {
    "resourceType": "StructureDefinition",
    "id": "fhir-iastm-test-procedure-tool",
    "url": PROCEDURE_PROFILE,
    "name": "FhirIastmTestProcedureTool",
    "status": "active",
    "fhirVersion": "4.0.1",
    "kind": "resource",
    "abstract": False,
    "type": "Procedure",
    "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Procedure",
    "derivation": "constraint",
    "differential": {
        "element": [
            {
                "id": "Procedure.usedCode",
                "path": "Procedure.usedCode",
                "min": 1,
                "binding": {"strength": "required", "valueSet": TOOL_VS},
            }
        ]
    },
}


@pytest.fixture(scope="module")
def conformance_uploaded(http: requests.Session, hapi_base_url: str) -> None:
    """Upload the test profiles before any validation (PUT, fixed ids: idempotent across runs)."""
    for resource in (PATIENT_SD, TOOL_CODESYSTEM, TOOL_VALUESET, PROCEDURE_SD):
        _put(http, hapi_base_url, resource)


def test_validate_against_posted_profile(
    http: requests.Session, hapi_base_url: str, conformance_uploaded: None
) -> None:
    without = _validate(
        http, hapi_base_url, {"resourceType": "Patient", "active": True}, PATIENT_PROFILE
    )
    errors = _issues(without, "error") + _issues(without, "fatal")
    assert errors, without
    assert any(
        "birthDate" in (i.get("diagnostics", "") + " ".join(i.get("expression", [])))
        for i in errors
    ), errors

    valid = _validate(
        http, hapi_base_url, {"resourceType": "Patient", "birthDate": "1970-01-01"}, PATIENT_PROFILE
    )
    assert _issues(valid, "error") + _issues(valid, "fatal") == [], valid


def test_validate_against_posted_valueset_and_codesystem(
    http: requests.Session, hapi_base_url: str, conformance_uploaded: None
) -> None:
    def procedure(code: str) -> dict[str, Any]:
        return {
            "resourceType": "Procedure",
            "status": "completed",
            "code": {"text": "IASTM"},
            "subject": {"reference": "Patient/example"},
            "usedCode": [{"coding": [{"system": TOOL_CS, "code": code}]}],
        }

    good = _validate(http, hapi_base_url, procedure("blade"), PROCEDURE_PROFILE)
    assert _issues(good, "error") + _issues(good, "fatal") == [], good

    bad = _validate(http, hapi_base_url, procedure("no-such-tool"), PROCEDURE_PROFILE)
    assert _issues(bad, "error"), bad

    missing = _validate(
        http, hapi_base_url, {**procedure("blade"), "usedCode": []}, PROCEDURE_PROFILE
    )
    assert _issues(missing, "error"), missing


def test_validate_with_snomed_and_loinc_codes_does_not_error(
    http: requests.Session, hapi_base_url: str, conformance_uploaded: None
) -> None:
    """SNOMED CT / LOINC cannot be checked offline: a warning at most, never an error."""
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": "2024-05-01T10:00:00Z",
        "bodySite": {"coding": [{"system": "http://snomed.info/sct", "code": "40983000"}]},
        "valueInteger": 4,
    }
    r = http.post(
        f"{hapi_base_url}/Observation/$validate", json=obs, headers=HEADERS, timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    assert _issues(r.json(), "error") + _issues(r.json(), "fatal") == [], r.json()


def test_unknown_profile_is_an_error(http: requests.Session, hapi_base_url: str) -> None:
    outcome = _validate(
        http,
        hapi_base_url,
        {"resourceType": "Patient", "birthDate": "1970-01-01"},
        f"{EX}/StructureDefinition/does-not-exist-{uuid.uuid4().hex}",
    )
    assert _issues(outcome, "error") + _issues(outcome, "fatal"), outcome


# paging and optimistic locking, which the push/pull client relies on ----------------------------


def test_search_paging_follows_next_links(http: requests.Session, hapi_base_url: str) -> None:
    tag: dict[str, Any] = {"system": f"{EX}/tags", "code": uuid.uuid4().hex}
    created = set()
    for _ in range(5):
        r = http.post(
            f"{hapi_base_url}/Patient",
            json={"resourceType": "Patient", "meta": {"tag": [tag]}},
            headers=HEADERS,
            timeout=TIMEOUT,
        )
        assert r.status_code == 201, r.text
        created.add(r.json()["id"])
    seen: list[str] = []
    url: str | None = f"{hapi_base_url}/Patient?_tag={tag['system']}|{tag['code']}&_count=2"
    pages = 0
    while url:
        r = http.get(url, headers=NO_CACHE, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page.get("entry", [])) <= 2
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next(
            (link["url"] for link in page.get("link", []) if link["relation"] == "next"), None
        )
        assert url is None or url.startswith("http://127.0.0.1:")
        pages += 1
        assert pages < 10
    assert pages >= 3
    assert sorted(seen) == sorted(created)


def test_transaction_put_with_stale_if_match_is_rejected_and_rolled_back(
    http: requests.Session, hapi_base_url: str
) -> None:
    rid = f"iastm-proc-{uuid.uuid4().hex[:12]}"
    proc: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": rid,
        "status": "completed",
        "code": {"text": "IASTM"},
        "subject": {"reference": "https://other.example.org/fhir/Patient/abc"},
    }
    _put(http, hapi_base_url, proc)  # version 1
    _put(http, hapi_base_url, {**proc, "note": [{"text": "newer"}]})  # version 2
    side_value = f"side-{uuid.uuid4().hex}"
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": PATIENT_SYSTEM, "value": side_value}],
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={PATIENT_SYSTEM}|{side_value}",
                },
            },
            {
                "fullUrl": f"{hapi_base_url}/Procedure/{rid}",
                "resource": {**proc, "note": [{"text": "stale retry"}]},
                "request": {"method": "PUT", "url": f"Procedure/{rid}", "ifMatch": 'W/"1"'},
            },
        ],
    }
    r = http.post(hapi_base_url, json=bundle, headers=HEADERS, timeout=TIMEOUT)
    assert r.status_code in (409, 412), r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    got = http.get(f"{hapi_base_url}/Procedure/{rid}", headers=NO_CACHE, timeout=TIMEOUT).json()
    assert got["meta"]["versionId"] == "2"
    assert got["note"] == [{"text": "newer"}]
    # the whole transaction was rolled back
    assert _count(http, hapi_base_url, "Patient", f"{PATIENT_SYSTEM}|{side_value}") == 0
