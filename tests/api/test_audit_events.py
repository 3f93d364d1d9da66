"""AuditEvents of the facade (docs/audit.md), on SQLite and PostgreSQL: one per read, vread,
history, search and export kick-off, BALP-shaped, without PHI, and readable by administrators
only."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from fhir_iastm.smart.scopes import allows, grant, parse_scopes
from tests.smart.helpers import bearer, register, token

EXAMPLE = json.loads((Path(__file__).resolve().parent.parent / "data" / "examples"
                      / "good-01-lateral-epicondylitis-graston.json").read_text())
TOKENS = "adm:read+admin,rd:read,wr:read+write"
ADMIN, READ = bearer("adm"), bearer("rd")
MRN_SYSTEM = "https://iastm.example.org/fhir/sid/clinic/RBPT-01/mrn"
#: What the example's patient is known by: none of it may appear in an AuditEvent.
PHI = ("MRN-100245", "Nguyen", "Thomas", "1978-04-12", "RBPT-2025-000311")


def digest(presented: str) -> str:
    return "token:" + hashlib.sha256(presented.encode()).hexdigest()[:12]


@pytest.fixture
def client(app_for: Callable[..., Any]) -> FlaskClient:
    client = app_for(IASTM_API_TOKENS=TOKENS).test_client()
    assert client.post("/api/sessions", json=EXAMPLE, headers=bearer("wr")).status_code == 201
    return client


def events(client: FlaskClient, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/fhir/AuditEvent{query}", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [e["resource"] for e in response.get_json().get("entry", [])
            if e["search"]["mode"] == "match"]


def patient_id(client: FlaskClient) -> str:
    found = client.get(f"/fhir/Patient?identifier={MRN_SYSTEM}|MRN-100245", headers=READ)
    return str(found.get_json()["entry"][0]["resource"]["id"])


def refs(event: dict[str, Any]) -> list[str]:
    return [e["what"]["reference"] for e in event.get("entity", []) if "what" in e]


def query_of(event: dict[str, Any]) -> str:
    (query,) = [e["query"] for e in event["entity"] if e["role"]["code"] == "24"]
    return base64.b64decode(query).decode()


def test_a_search_is_one_event_with_the_patients_and_parameter_names_only(
        client: FlaskClient) -> None:
    pid = patient_id(client)
    (event,) = events(client)
    assert event["type"] == {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                             "code": "rest", "display": "RESTful Operation"}
    assert event["subtype"][0]["system"] == "http://hl7.org/fhir/restful-interaction"
    assert event["subtype"][0]["code"] == "search-type"
    assert (event["action"], event["outcome"]) == ("E", "0")
    assert event["agent"][0]["altId"] == digest("rd")
    assert event["agent"][0]["requestor"] is True
    assert event["source"]["site"] == "http://localhost/fhir"
    assert refs(event) == [f"Patient/{pid}"]
    assert query_of(event) == "Patient?identifier"  # the MRN searched for is not kept
    assert not any(value in json.dumps(event) for value in PHI)


def test_read_vread_history_and_failures_are_audited(client: FlaskClient) -> None:
    pid = patient_id(client)
    proc = client.get(f"/fhir/Procedure?subject=Patient/{pid}", headers=READ).get_json()
    proc_id = proc["entry"][0]["resource"]["id"]
    assert client.get(f"/fhir/Procedure/{proc_id}", headers=READ).status_code == 200
    assert client.get(f"/fhir/Procedure/{proc_id}/_history/1", headers=READ).status_code == 200
    assert client.get(f"/fhir/Procedure/{proc_id}/_history", headers=READ).status_code == 200
    assert client.get("/fhir/Patient/nobody", headers=READ).status_code == 404
    assert client.get(f"/fhir/Patient/{pid}").status_code == 401
    newest_first = events(client)
    got = [(e["subtype"][0]["code"], e["action"], e["outcome"]) for e in reversed(newest_first)]
    assert got == [("search-type", "E", "0"), ("search-type", "E", "0"), ("read", "R", "0"),
                   ("vread", "R", "0"), ("history-instance", "R", "0"), ("read", "R", "4"),
                   ("read", "R", "4")]
    read = newest_first[4]
    assert refs(read) == [f"Patient/{pid}", f"Procedure/{proc_id}/_history/1"]
    assert query_of(newest_first[5]) == "Procedure?subject"
    assert refs(newest_first[1]) == ["Patient/nobody"]
    assert newest_first[0]["agent"][0]["altId"] == "anonymous"
    assert refs(newest_first[0]) == [f"Patient/{pid}"]


def test_search_by_patient_entity_agent_date_and_paging(client: FlaskClient) -> None:
    pid = patient_id(client)
    client.get("/fhir/Practitioner", headers=bearer("wr"))
    client.get(f"/fhir/Patient/{pid}", headers=ADMIN)
    assert len(events(client)) == 3
    assert [refs(e) for e in events(client, f"?patient={pid}")] == [[f"Patient/{pid}"]] * 2
    assert len(events(client, f"?entity=Patient/{pid}")) == 2
    assert len(events(client, f"?patient=http://localhost/fhir/Patient/{pid}")) == 2
    assert events(client, "?patient=other") == []
    assert [e["agent"][0]["altId"] for e in events(client, f"?agent={digest('wr')}")] == [
        digest("wr")]
    assert len(events(client, f"?altid={digest('adm')}&patient={pid}")) == 1
    assert len(events(client, "?date=ge2000-01-01&date=lt9999")) == 3
    assert events(client, "?date=lt2000") == []
    first = client.get("/fhir/AuditEvent?_count=2", headers=ADMIN).get_json()
    (link,) = [li["url"] for li in first["link"] if li["relation"] == "next"]
    split = urlsplit(link)
    rest = client.get(f"{split.path}?{split.query}", headers=ADMIN).get_json()
    ids = [e["resource"]["id"] for b in (first, rest) for e in b["entry"]]
    assert len(ids) == len(set(ids)) == 3
    one = client.get(f"/fhir/AuditEvent/{ids[0]}", headers=ADMIN)
    assert one.status_code == 200
    assert one.get_json()["id"] == ids[0]
    assert client.get("/fhir/AuditEvent/none", headers=ADMIN).status_code == 404
    bad = client.get("/fhir/AuditEvent?date=yesterday", headers=ADMIN)
    assert bad.status_code == 400
    assert "date" in bad.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("headers", [READ, bearer("wr"), {}])
def test_only_an_admin_token_reads_the_audit_trail(client: FlaskClient,
                                                   headers: dict[str, str]) -> None:
    for path in ("/fhir/AuditEvent", "/fhir/AuditEvent/x"):
        response = client.get(path, headers=headers)
        assert response.status_code == (401 if not headers else 403)
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_an_open_instance_serves_no_audit_trail(app_for: Callable[..., Any]) -> None:
    client = app_for().test_client()
    response = client.get("/fhir/AuditEvent")
    assert response.status_code == 403
    assert "administrator" in response.get_json()["issue"][0]["diagnostics"]


def test_smart_audit_scope_is_never_granted_by_a_wildcard(app_for: Callable[..., Any]) -> None:
    wildcard, explicit = parse_scopes("system/*.rs"), parse_scopes("system/AuditEvent.rs")
    assert not allows(wildcard, "AuditEvent", "r")
    assert allows(wildcard, "Patient", "rs")
    assert grant(explicit, wildcard) == []
    assert grant(explicit, explicit) == explicit
    app = app_for(IASTM_SMART_AUTH="true", IASTM_API_TOKENS="adm:admin")
    client = app.test_client()
    reader_id = register(app)
    reader = token(client, reader_id)
    assert client.get("/fhir/Patient", headers=bearer(reader)).status_code == 200
    denied = client.get("/fhir/AuditEvent", headers=bearer(reader))
    assert denied.status_code == 403
    auditor_id = register(app, scope="system/AuditEvent.rs")
    auditor = token(client, auditor_id, scope="system/AuditEvent.rs")
    found = client.get("/fhir/AuditEvent", headers=bearer(auditor))
    assert found.status_code == 200
    agents = [e["resource"]["agent"][0]["altId"] for e in found.get_json()["entry"]]
    assert agents == ["client:" + reader_id]


def test_export_kickoff_is_an_execute_event(app_for: Callable[..., Any], tmp_path: Path) -> None:
    client = app_for(IASTM_API_TOKENS=TOKENS, IASTM_EXPORT_DIR=str(tmp_path)).test_client()
    kick = client.get("/fhir/Patient/$export?_type=Patient,Procedure", headers={
        **READ, "Accept": "application/fhir+json", "Prefer": "respond-async"})
    assert kick.status_code == 202
    (event,) = events(client)
    assert (event["subtype"][0]["code"], event["action"], event["outcome"]) == (
        "operation", "E", "0")
    assert query_of(event) == "Patient/$export?_type"


def test_capability_statement_declares_the_audit_trail(client: FlaskClient) -> None:
    statement = client.get("/fhir/metadata").get_json()
    (audit,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent"]
    assert [i["code"] for i in audit["interaction"]] == ["read", "search-type"]
    assert {p["name"] for p in audit["searchParam"]} >= {"date", "agent", "entity", "patient"}
