"""The HTTP service: records API, FHIR facade, auth, errors — on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from fhir_iastm.errors import ERROR_CODE_SYSTEM

EXAMPLES = Path(__file__).parents[1] / "data" / "examples"
GOOD = sorted(EXAMPLES.glob("good-*.json"))
BAD = sorted(p for p in EXAMPLES.glob("bad-*.json") if not p.name.endswith(".expected.json"))
FHIR_JSON = "application/fhir+json"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def good(name: str) -> dict[str, Any]:
    return load(next(p for p in GOOD if name in p.name))


@pytest.fixture
def client(app_for: Callable[..., Any]) -> FlaskClient:
    return app_for().test_client()


def assert_outcome(response: Any, status: int, code: str | None = None,
                   expression: str | None = None) -> list[dict[str, Any]]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    issues = body["issue"]
    if code is not None:
        found = [(i["details"]["coding"][0]["code"], (i.get("expression") or [None])[0])
                 for i in issues if i.get("details")]
        assert (code, expression) in found, found
        assert all(i["details"]["coding"][0]["system"] == ERROR_CODE_SYSTEM
                   for i in issues if i.get("details"))
    return issues


# --- records API -------------------------------------------------------------------------------

def test_every_good_example_is_stored_with_201(client: FlaskClient) -> None:
    for path in GOOD:
        record = load(path)
        response = client.post("/api/sessions", json=record)
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert body["session_id"] == record["session_id"]
        assert body["status"] == "created"
        assert response.headers["Location"] == f"/api/sessions/{record['session_id']}"
        stored = client.get(body["links"]["self"])
        assert stored.status_code == 200
        assert stored.get_json() == record  # kept exactly as accepted


def test_repost_semantics_follow_decision_15(client: FlaskClient) -> None:
    record = good("good-01")
    assert client.post("/api/sessions", json=record).status_code == 201
    repeat = client.post("/api/sessions", json=record)
    assert repeat.status_code == 200
    assert repeat.get_json()["status"] == "unchanged"
    # last_modified is outside the canonical content: still a repeat
    cosmetic = copy.deepcopy(record) | {"last_modified": "2025-06-01T00:00:00Z"}
    assert client.post("/api/sessions", json=cosmetic).status_code == 200
    changed = copy.deepcopy(record) | {"notes": "amended"}
    assert_outcome(client.post("/api/sessions", json=changed), 409, "E_DUPLICATE_SESSION",
                   "session_id")
    newer = changed | {"record_version": record["record_version"] + 1}
    response = client.post("/api/sessions", json=newer)
    assert response.status_code == 201
    assert response.get_json()["status"] == "new-version"
    assert_outcome(client.post("/api/sessions", json=record), 409, "E_STALE_VERSION",
                   "record_version")
    assert client.get(f"/api/sessions/{record['session_id']}").get_json()["notes"] == "amended"
    old = client.get(f"/api/sessions/{record['session_id']}?version={record['record_version']}")
    assert old.get_json() == record


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_examples_answer_with_their_code_path_and_status(client: FlaskClient,
                                                             path: Path) -> None:
    expected = load(path.with_name(path.stem + ".expected.json"))
    if "duplicate-session" in path.name:
        assert client.post("/api/sessions", json=good("good-01")).status_code == 201
    error = expected["expected"]["errors"][0]
    expression = error["path"].strip("/").replace("/", ".")
    expression = ".".join(
        f"[{part}]" if part.isdigit() else part for part in expression.split(".")
    ).replace(".[", "[")
    assert_outcome(client.post("/api/sessions", json=load(path)), expected["http_status"],
                   error["code"], expression)


def test_several_defects_are_all_reported(client: FlaskClient) -> None:
    record = good("good-01")
    record["pain"]["post"] = 11
    record["treatment_sites"][0]["laterality"] = "both"
    issues = assert_outcome(client.post("/api/sessions", json=record), 422)
    codes = {(i["details"]["text"], i["expression"][0]) for i in issues}
    assert ("E_RANGE", "pain.post") in codes
    assert ("E_CODE_UNKNOWN", "treatment_sites[0].laterality") in codes


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[]", "application/json", 422),
        ('"text"', "application/json", 422),
        ('{"a": 1}', "text/plain", 415),
        ("", None, 415),
    ],
)
def test_malformed_requests_get_an_outcome(client: FlaskClient, data: str,
                                           content_type: str | None, status: int) -> None:
    response = client.post("/api/sessions", data=data, content_type=content_type)
    assert_outcome(response, status)


def test_oversized_body_is_413(app_for: Callable[..., Any]) -> None:
    app = app_for(IASTM_MAX_BODY_BYTES="2KiB")
    record = good("good-01") | {"notes": "x" * 4000}
    assert_outcome(app.test_client().post("/api/sessions", json=record), 413)


def test_unknown_session_is_404_everywhere(client: FlaskClient) -> None:
    for url in ("/api/sessions/NOPE-1", "/api/sessions/NOPE-1/fhir", "/api/sessions/NOPE-1/sync"):
        assert_outcome(client.get(url), 404)
    assert_outcome(client.post("/api/sessions/NOPE-1/push"), 404)
    assert_outcome(client.get("/no/such/route"), 404)


def test_list_filters_and_pages(client: FlaskClient) -> None:
    for path in GOOD:
        client.post("/api/sessions", json=load(path))
    first = client.get("/api/sessions?limit=3").get_json()
    assert len(first["items"]) == 3
    second = client.get(first["next"]).get_json()
    seen = [i["session_id"] for i in first["items"] + second["items"]]
    assert len(seen) == len(set(seen)) == 6
    mrn = good("good-01")["patient"]["mrn"]
    by_patient = client.get(f"/api/sessions?patient={mrn}&limit=100").get_json()["items"]
    expected = {load(p)["session_id"] for p in GOOD if load(p)["patient"]["mrn"] == mrn}
    assert {i["session_id"] for i in by_patient} == expected
    cancelled = client.get("/api/sessions?status=cancelled").get_json()["items"]
    assert [i["session_id"] for i in cancelled] == [good("good-08")["session_id"]]
    queued = client.get("/api/sessions?sync=queued&limit=100").get_json()["items"]
    assert len(queued) == len(GOOD)
    assert_outcome(client.get("/api/sessions?status=done"), 400)
    assert_outcome(client.get("/api/sessions?since=2025-01-01"), 400)  # no offset
    assert_outcome(client.get("/api/sessions?limit=0"), 400)


def test_fhir_bundle_push_and_sync(client: FlaskClient) -> None:
    record = good("good-03")
    client.post("/api/sessions", json=record)
    sid = record["session_id"]
    bundle = client.get(f"/api/sessions/{sid}/fhir")
    assert bundle.mimetype == FHIR_JSON
    body = bundle.get_json()
    assert body["resourceType"] == "Bundle" and body["type"] == "transaction"
    sync = client.get(f"/api/sessions/{sid}/sync").get_json()
    assert sync["state"] == "queued" and sync["current_version"] == record["record_version"]
    pushed = client.post(f"/api/sessions/{sid}/push")
    assert pushed.status_code == 202
    assert pushed.get_json()["outbox_id"]


# --- FHIR facade -------------------------------------------------------------------------------

@pytest.fixture
def loaded(client: FlaskClient) -> FlaskClient:
    for path in GOOD:
        assert client.post("/api/sessions", json=load(path)).status_code == 201
    return client


def entries(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    return [e["resource"] for e in response.get_json().get("entry", [])]


def test_metadata_lists_profiles_and_searches(loaded: FlaskClient) -> None:
    body = loaded.get("/fhir/metadata").get_json()
    assert body["resourceType"] == "CapabilityStatement" and body["fhirVersion"] == "4.0.1"
    procedure = next(r for r in body["rest"][0]["resource"] if r["type"] == "Procedure")
    assert any(p.endswith("/StructureDefinition/iastm-procedure")
               for p in procedure["supportedProfile"])
    assert {p["name"] for p in procedure["searchParam"]} >= {"patient", "date", "code",
                                                              "identifier"}


def test_search_procedures_by_patient_identifier_code_and_date(loaded: FlaskClient) -> None:
    record = good("good-01")
    iastm = "https://iastm.example.org/fhir/sid/iastm-session"
    found = entries(loaded.get(f"/fhir/Procedure?identifier={iastm}|{record['session_id']}"))
    assert len(found) == 1
    procedure = found[0]
    patient_ref = procedure["subject"]["reference"]
    patient = loaded.get(f"/fhir/{patient_ref}").get_json()
    assert patient["resourceType"] == "Patient"
    assert patient["identifier"][0]["value"] == record["patient"]["mrn"]
    sessions_of_patient = {load(p)["session_id"] for p in GOOD
                           if load(p)["patient"]["mrn"] == record["patient"]["mrn"]}
    by_patient = entries(loaded.get(f"/fhir/Procedure?patient={patient_ref}&_count=100"))
    iastm_ids = {i["value"] for r in by_patient for i in r["identifier"] if i["system"] == iastm}
    assert iastm_ids == sessions_of_patient
    day = record["session"]["start"][:10]
    on_day = entries(loaded.get(f"/fhir/Procedure?date={day}&identifier={iastm}|"
                                f"{record['session_id']}"))
    assert len(on_day) == 1
    assert entries(loaded.get(f"/fhir/Procedure?date=lt1990-01-01")) == []
    pain = entries(loaded.get("/fhir/Observation?code=http://loinc.org|72514-3&_count=100"))
    assert pain and all(o["code"]["coding"][0]["code"] == "72514-3" for o in pain)
    by_mrn = entries(loaded.get(f"/fhir/Patient?identifier={record['patient']['mrn']}"))
    assert [p["id"] for p in by_mrn] == [patient["id"]]


def test_search_pages_with_next_links(loaded: FlaskClient) -> None:
    response = loaded.get("/fhir/Observation?_count=2")
    total = response.get_json()["total"]
    ids: list[str] = [r["id"] for r in entries(response)]
    url = next((link["url"] for link in response.get_json()["link"]
                if link["relation"] == "next"), None)
    while url:
        page = loaded.get(url.replace("http://localhost", ""))
        ids += [r["id"] for r in entries(page)]
        url = next((link["url"] for link in page.get_json()["link"]
                    if link["relation"] == "next"), None)
    assert len(ids) == len(set(ids)) == total > 2


def test_facade_errors_are_outcomes(loaded: FlaskClient) -> None:
    strict = {"Prefer": "handling=strict"}
    assert_outcome(loaded.get("/fhir/Procedure?foo=bar", headers=strict), 400)
    assert_outcome(loaded.get("/fhir/Procedure?date=yesterday"), 400)
    assert_outcome(loaded.get("/fhir/Procedure/does-not-exist"), 404)
    assert_outcome(loaded.get("/fhir/Medication?code=1"), 404)
    assert_outcome(loaded.get("/fhir/Procedure?_count=x"), 400)


def test_validate_operation_uses_our_profiles(loaded: FlaskClient) -> None:
    iastm = "https://iastm.example.org/fhir/sid/iastm-session"
    procedure = entries(loaded.get(f"/fhir/Procedure?identifier={iastm}|"
                                   f"{good('good-01')['session_id']}"))[0]
    ok = loaded.post("/fhir/Procedure/$validate", json=procedure)
    assert ok.status_code == 200
    assert not [i for i in ok.get_json()["issue"] if i["severity"] in ("error", "fatal")]
    broken = copy.deepcopy(procedure)
    del broken["bodySite"][0]["extension"]
    bad = loaded.post("/fhir/Procedure/$validate", json={
        "resourceType": "Parameters", "parameter": [{"name": "resource", "resource": broken}]})
    assert [i for i in bad.get_json()["issue"] if i["severity"] == "error"]
    assert_outcome(loaded.post("/fhir/Procedure/$validate", json={"resourceType": "Patient"}), 400)


def test_conformance_resources_are_served(loaded: FlaskClient) -> None:
    sd = loaded.get("/fhir/StructureDefinition/iastm-procedure")
    assert sd.status_code == 200
    assert sd.get_json()["url"].endswith("/StructureDefinition/iastm-procedure")
    listing = entries(loaded.get("/fhir/ValueSet"))
    assert listing and all(r["resourceType"] == "ValueSet" for r in listing)
    assert_outcome(loaded.get("/fhir/StructureDefinition/nope"), 404)


def test_newer_version_replaces_session_resources_in_the_facade(loaded: FlaskClient) -> None:
    record = good("good-06")
    dropped = copy.deepcopy(record) | {"record_version": record["record_version"] + 1}
    dropped["rom"] = dropped["rom"][:1]
    assert loaded.post("/api/sessions", json=dropped).status_code == 201
    system = "https://iastm.example.org/fhir/sid/iastm-session-resource"
    obs = entries(loaded.get("/fhir/Observation?_count=500"))
    rom = [i["value"] for o in obs for i in o["identifier"]
           if i["system"] == system and i["value"].startswith(f"{record['session_id']}/obs/rom")]
    assert len(rom) == 1


# --- auth, OpenAPI, logs -----------------------------------------------------------------------

def test_bearer_tokens_and_scopes(app_for: Callable[..., Any]) -> None:
    app = app_for(IASTM_API_TOKENS="rtok:read,wtok:read+write")
    client = app.test_client()
    record = good("good-02")
    assert client.get("/healthz").status_code == 200
    assert client.get("/fhir/metadata").status_code == 200
    assert_outcome(client.post("/api/sessions", json=record), 401)
    assert_outcome(client.get("/fhir/Procedure", headers={"Authorization": "Bearer nope"}), 401)
    assert_outcome(client.post("/api/sessions", json=record,
                               headers={"Authorization": "Bearer rtok"}), 403)
    ok = client.post("/api/sessions", json=record, headers={"Authorization": "Bearer wtok"})
    assert ok.status_code == 201
    read = client.get(f"/api/sessions/{record['session_id']}",
                      headers={"Authorization": "Bearer rtok"})
    assert read.status_code == 200
    audit = app.extensions["fhir_iastm"].store.audit_log(record["session_id"])
    assert audit and all("tok" not in (row["actor"] or "").replace("token:", "") for row in audit)


def test_openapi_is_generated_from_the_record_schema(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    schema = spec["components"]["schemas"]["SessionRecord"]
    assert {"session_id", "record_version", "patient", "treatment_sites"} <= set(
        schema["properties"])
    assert "/api/sessions/{session_id}/sync" in spec["paths"]


def test_logs_carry_no_phi(app_for: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    app = app_for()
    client = app.test_client()
    caplog.set_level(logging.DEBUG, logger="fhir_iastm")
    records = [load(p) for p in GOOD + BAD]
    for record in records:
        client.post("/api/sessions", json=record)
        sid = record.get("session_id", "x")
        client.get(f"/api/sessions/{sid}")
        client.get(f"/api/sessions/{sid}/fhir")
        mrn = (record.get("patient") or {}).get("mrn", "x")
        client.get(f"/api/sessions?patient={mrn}")
        client.get(f"/fhir/Patient?identifier={mrn}")
    text = "\n".join(r.getMessage() + json.dumps(getattr(r, "fields", {})) for r in caplog.records)
    assert "request" in text  # the access log did run
    for record in records:
        patient = record.get("patient") or {}
        phi = [patient.get("family_name"), patient.get("mrn"), patient.get("birth_date"),
               *patient.get("given_names", [])]
        for value in (v for v in phi if v and len(v) >= 3):
            assert value not in text, f"PHI value found in logs: {value[:2]}…"


def test_record_schema_is_served_and_used_by_openapi(client: FlaskClient) -> None:
    from fhir_iastm.records.contract import record_json_schema

    response = client.get("/api/record.schema.json")
    assert response.status_code == 200
    assert response.mimetype == "application/schema+json"
    served = response.get_json()
    assert served == record_json_schema()
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    components = spec["components"]["schemas"]
    assert components["SessionRecord"]["properties"]["session_id"] == served["properties"][
        "session_id"]
    assert components["Patient"] == json.loads(
        json.dumps(served["$defs"]["Patient"]).replace("#/$defs/", "#/components/schemas/"))
    untyped = [(name, key) for name, obj in components.items() if "properties" in obj
               for key, prop in obj["properties"].items()
               if not all("type" in a or "$ref" in a for a in prop.get("anyOf", [prop]))]
    assert untyped == []
    refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(spec))
    assert refs
    assert set(refs) <= set(components)
