"""Bulk Data $export beyond the test kit: refused kick-offs, 429s, a failed job, expiry, scopes,
Patient and Group content, _typeFilter, _elements, deleted resources, profile validity, the
read snapshot, Groups, and the export-worker command (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.storage import ExportStore
from fhir_iastm.validation import validate
from tests.api.bulk_support import GOOD, STATIC, Bulk, load, other_clinic

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def make(make_bulk: Callable[..., Bulk]) -> Callable[..., Bulk]:
    return make_bulk


@pytest.fixture
def bulk(make: Callable[..., Bulk]) -> Bulk:
    return make()


def outcome(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0]["diagnostics"])


def group_id(bulk: Bulk, name: str = "Riverbend Physical Therapy") -> str:
    groups = bulk.client.get("/fhir/Group", headers=bulk.auth).get_json()
    return str(next(e["resource"]["id"] for e in groups["entry"]
                    if e["resource"]["name"] == name))


# -- refused kick-offs -----------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "query", "match"), [
    ({"Accept": None}, {}, "Accept"),
    ({"Accept": "application/json"}, {}, "Accept"),
    ({"Prefer": None}, {}, "respond-async"),
    ({}, {"_outputFormat": "text/csv"}, "_outputFormat"),
    ({}, {"_type": "Medication"}, "_type"),
    ({}, {"_typeFilter": "Observation?nonsense=1"}, "_typeFilter"),
    ({}, {"_typeFilter": "Observation"}, "_typeFilter"),
    ({}, {"_typeFilter": "Observation?_count=5"}, "_typeFilter"),
    ({}, {"_since": "2026-01-01"}, "_since"),
    ({}, {"includeAssociatedData": "_labResults"}, "includeAssociatedData"),
    ({}, {"_foo": "1"}, "_foo"),
    ({}, {"patient": "Patient/x"}, "patient"),
])
def test_unsupported_kickoffs_are_400(bulk: Bulk, headers: dict[str, Any],
                                      query: dict[str, str], match: str) -> None:
    response = bulk.kick_off("/fhir/Patient/$export", headers=headers, query_string=query)
    assert match in outcome(response)


def test_patient_is_refused_at_system_level(bulk: Bulk) -> None:
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/x"}}]}
    assert "Patient and Group level" in outcome(bulk.kick_off("/fhir/$export", json=body))


def test_lenient_handling_ignores_and_reports(bulk: Bulk) -> None:
    manifest = bulk.export(headers={"Prefer": "respond-async, handling=lenient"},
                           query_string={"_type": "Patient,Medication", "_foo": "1",
                                         "includeAssociatedData": "_labResults"})
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    assert len(manifest["error"]) == 1
    lines = bulk.download(manifest["error"][0]["url"]).get_data(as_text=True).splitlines()
    ignored = [json.loads(line)["issue"][0]["diagnostics"] for line in lines]
    assert any("_type=Medication" in d for d in ignored)
    assert any("_foo" in d for d in ignored)
    assert any("includeAssociatedData" in d for d in ignored)


def test_a_second_concurrent_export_of_a_client_is_429(bulk: Bulk) -> None:
    assert bulk.kick_off().status_code == 202
    again = bulk.kick_off("/fhir/Patient/$export")
    outcome(again, 429)
    assert int(again.headers["Retry-After"]) > 0
    other = Bulk(bulk.app)  # another client is not held up
    assert other.kick_off().status_code == 202


def test_polling_too_often_is_429(make: Callable[..., Bulk]) -> None:
    bulk = make(IASTM_EXPORT_POLL_SECONDS="30")
    location = bulk.kick_off().headers["Content-Location"]
    first = bulk.status(location)
    assert first.status_code == 202
    assert first.headers["Retry-After"] == "30"
    second = bulk.status(location)
    outcome(second, 429)
    assert second.headers["Retry-After"] == "30"


def test_a_failed_job_answers_500_with_an_operation_outcome(bulk: Bulk, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    bulk.app.extensions["fhir_iastm"].exporter.export_dir = blocker
    location = bulk.kick_off().headers["Content-Location"]
    bulk.work()
    failed = bulk.status(location)
    assert failed.status_code == 500
    assert failed.get_json()["issue"][0]["code"] == "exception"


def test_files_expire_and_are_cleaned(bulk: Bulk) -> None:
    exporter = bulk.app.extensions["fhir_iastm"].exporter
    exporter.retention = 1
    response = bulk.kick_off()
    bulk.work()
    location = response.headers["Content-Location"]
    manifest = bulk.status(location).get_json()
    folder = exporter.export_dir / location.rsplit("/", 1)[1]
    assert folder.is_dir()
    time.sleep(1.1)
    assert exporter.clean() == 1
    assert not folder.exists()
    outcome(bulk.status(location), 404)
    assert bulk.download(manifest["output"][0]["url"]).status_code == 404


def test_delete_after_completion_removes_the_files(bulk: Bulk) -> None:
    exporter = bulk.app.extensions["fhir_iastm"].exporter
    manifest = bulk.export()
    url = manifest["output"][0]["url"]
    location = "/fhir/$export-poll-status/" + url.split("/")[-2]
    assert bulk.status(location, "DELETE").status_code == 202
    assert bulk.download(url).status_code == 404
    exporter.clean()
    assert not (exporter.export_dir / url.split("/")[-2]).exists()


def test_another_client_cannot_see_a_job(bulk: Bulk) -> None:
    manifest = bulk.export()
    other = Bulk(bulk.app)
    location = "/fhir/$export-poll-status/" + manifest["output"][0]["url"].split("/")[-2]
    outcome(other.status(location), 404)
    assert other.download(manifest["output"][0]["url"]).status_code == 404


# -- scopes ----------------------------------------------------------------------------------------

def test_export_needs_rs_on_every_exported_type(make: Callable[..., Bulk]) -> None:
    bulk = make(scope="system/Patient.rs system/Observation.r")
    denied = bulk.kick_off()
    assert "Encounter" in outcome(denied, 403)
    assert "Observation" in outcome(bulk.kick_off(query_string={"_type": "Observation"}), 403)
    manifest = bulk.export(query_string={"_type": "Patient"})
    assert [o["type"] for o in manifest["output"]] == ["Patient"]


# -- content ---------------------------------------------------------------------------------------

def test_system_export_holds_every_resource_once_and_current(bulk: Bulk) -> None:
    exported = bulk.resources(bulk.export())
    for rtype, resources in exported.items():
        ids = [r["id"] for r in resources]
        assert len(ids) == len(set(ids)), rtype
        if rtype == "Provenance":  # built from the stored records: one per session
            assert len(ids) == len(GOOD) + 1
            continue
        search = bulk.client.get(f"/fhir/{rtype}?_count=500&_total=accurate", headers=bulk.auth)
        assert search.get_json()["total"] == len(ids), rtype
    assert set(exported) == {"Patient", "Encounter", "Condition", "Procedure", "Observation",
                             "Provenance", "Practitioner", "Organization"}
    assert len(exported["Organization"]) == 2


def test_every_exported_resource_validates_against_our_profiles(bulk: Bulk) -> None:
    profiles = bulk.app.extensions["fhir_iastm"].profiles
    for rtype, resources in bulk.resources(bulk.export()).items():
        for resource in resources:
            errors = [i for i in validate(resource, profiles) if i.is_error]
            assert not errors, (rtype, resource["id"], errors[:3])


def test_group_export_holds_only_the_clinics_compartments(bulk: Bulk) -> None:
    other = bulk.resources(bulk.export(f"/fhir/Group/{group_id(bulk, 'Other Clinic')}/$export"))
    assert len(other["Patient"]) == 1
    pid = other["Patient"][0]["id"]
    for rtype in ("Encounter", "Condition", "Procedure", "Observation"):
        assert other[rtype]
        assert {r["subject"]["reference"] for r in other[rtype]} == {f"Patient/{pid}"}
    assert [o["name"] for o in other["Organization"]] == ["Other Clinic"]
    assert len(other["Practitioner"]) == 1
    main = bulk.resources(bulk.export(f"/fhir/Group/{group_id(bulk)}/$export"))
    assert pid not in {p["id"] for p in main["Patient"]}
    assert len({p["id"] for p in main["Patient"]}) == len(main["Patient"]) >= 2


def test_patient_parameter_limits_a_post_kickoff(bulk: Bulk) -> None:
    everyone = bulk.resources(bulk.export("/fhir/Patient/$export"))["Patient"]
    chosen = everyone[0]["id"]
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{chosen}"}},
        {"name": "_outputFormat", "valueString": "application/fhir+ndjson"}]}
    exported = bulk.resources(bulk.export("/fhir/Patient/$export", json=body))
    assert [p["id"] for p in exported["Patient"]] == [chosen]
    assert {o["subject"]["reference"] for o in exported["Observation"]} == {f"Patient/{chosen}"}


def test_type_filter_reuses_the_search_parser(bulk: Bulk) -> None:
    exported = bulk.resources(bulk.export(query_string={
        "_type": "Observation,Patient", "_typeFilter": "Observation?code=http://loinc.org|72514-3"}))
    codes = {c["code"] for o in exported["Observation"] for c in o["code"]["coding"]}
    assert codes == {"72514-3"}
    assert len(exported["Patient"]) >= 2  # a type without a filter is not filtered


def test_elements_keeps_the_listed_top_level_elements_and_tags(bulk: Bulk) -> None:
    exported = bulk.resources(bulk.export(query_string={
        "_type": "Patient,Organization", "_elements": "Patient.gender"}))
    for patient in exported["Patient"]:
        assert set(patient) <= {"resourceType", "id", "meta", "gender"}
        assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED"} in patient["meta"]["tag"]
    assert all("name" in o for o in exported["Organization"])  # other types are whole


def test_deleted_lists_resources_retracted_after_since(bulk: Bulk) -> None:
    first = bulk.export()
    time.sleep(0.01)
    changed = json.loads(GOOD[0].read_text())
    changed["record_version"] += 1
    changed["adjunct_therapies"] = changed["adjunct_therapies"][:1]
    assert bulk.client.post("/api/sessions", json=changed, headers=STATIC).status_code == 201
    later = bulk.export(query_string={"_since": first["transactionTime"]})
    assert len(later["deleted"]) == 1
    bundle = json.loads(bulk.download(later["deleted"][0]["url"]).get_data(as_text=True))
    assert bundle["type"] == "transaction"
    urls = [e["request"]["url"] for e in bundle["entry"]]
    assert urls
    assert all(e["request"]["method"] == "DELETE" for e in bundle["entry"])
    for url in urls:
        assert bulk.client.get(f"/fhir/{url}", headers=bulk.auth).status_code == 410


def test_the_snapshot_excludes_writes_after_transaction_time(bulk: Bulk) -> None:
    state = bulk.app.extensions["fhir_iastm"]
    jobs = ExportStore(state.store)
    newcomer = copy.deepcopy(other_clinic())
    newcomer.update(session_id="OTHR-2025-000002")
    newcomer["patient"]["mrn"] = "MRN-900002"
    with jobs.snapshot() as snap:
        before = {r.resource_id for r in snap.resources("Patient")}
        response = bulk.client.post("/api/sessions", json=newcomer, headers=STATIC)
        assert response.status_code == 201
        during = {r.resource_id for r in snap.resources("Patient")}
        cut = snap.transaction_time
    after = bulk.client.get("/fhir/Patient?_count=500", headers=bulk.auth).get_json()
    added = {e["resource"]["id"] for e in after["entry"]} - before
    assert during == before
    assert len(added) == 1
    new = bulk.client.get(f"/fhir/Patient/{added.pop()}", headers=bulk.auth).get_json()
    updated = datetime.fromisoformat(new["meta"]["lastUpdated"].replace("Z", "+00:00"))
    assert updated > cut


# -- groups ----------------------------------------------------------------------------------------

def test_group_read_and_search_by_identifier(bulk: Bulk) -> None:
    gid = group_id(bulk, "Other Clinic")
    group = bulk.client.get(f"/fhir/Group/{gid}", headers=bulk.auth).get_json()
    assert group["resourceType"] == "Group"
    assert (group["type"], group["actual"], group["quantity"]) == ("person", True, 1)
    org = bulk.client.get(f"/fhir/Organization/{gid}", headers=bulk.auth).get_json()
    assert group["identifier"] == org["identifier"]
    clinic = next(i for i in org["identifier"] if i["value"] == "OTHR-01")
    found = bulk.client.get(f"/fhir/Group?identifier={clinic['system']}|OTHR-01",
                            headers=bulk.auth).get_json()
    assert [e["resource"]["id"] for e in found["entry"]] == [gid]
    assert bulk.client.get("/fhir/Group/nope", headers=bulk.auth).status_code == 404
    outcome(bulk.kick_off("/fhir/Group/nope/$export"), 404)
    profiles = bulk.app.extensions["fhir_iastm"].profiles
    assert not [i for i in validate(group, profiles) if i.is_error]


def test_group_members_are_the_clinics_patients(bulk: Bulk) -> None:
    group = bulk.client.get(f"/fhir/Group/{group_id(bulk)}", headers=bulk.auth).get_json()
    members = {m["entity"]["reference"] for m in group["member"]}
    mrns = {json.loads(p.read_text())["patient"]["mrn"] for p in GOOD}
    assert len(members) == len(mrns) == group["quantity"]


# -- the worker process ----------------------------------------------------------------------------

def test_export_worker_command_runs_a_queued_job(bulk: Bulk, tmp_path: Path) -> None:
    location = bulk.kick_off().headers["Content-Location"]
    url = bulk.app.extensions["fhir_iastm"].store.engine.url.render_as_string(
        hide_password=False)
    env = {**os.environ, "IASTM_DATABASE_URL": url,
           "IASTM_EXPORT_DIR": str(tmp_path / "exports")}
    done = subprocess.run([sys.executable, "-m", "fhir_iastm", "export-worker", "--once"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.strip().splitlines()[-1]) == {"exports": 1, "cleaned": 0}
    manifest = bulk.status(location).get_json()
    assert sum(o["count"] for o in manifest["output"]) > 0
    assert manifest["transactionTime"] < datetime.now(UTC).isoformat()


def test_an_open_service_exports_without_tokens(app_for: Callable[..., Any],
                                                tmp_path: Path) -> None:
    app = app_for(IASTM_EXPORT_DIR=str(tmp_path / "exports"), IASTM_EXPORT_POLL_SECONDS="0")
    client = app.test_client()
    load(client, second_clinic=False)
    kicked = client.get("/fhir/$export", headers={"Accept": "application/fhir+json",
                                                  "Prefer": "respond-async"})
    assert kicked.status_code == 202
    assert app.extensions["fhir_iastm"].exporter.run_next()
    location = kicked.headers["Content-Location"].removeprefix("http://localhost")
    manifest = client.get(location).get_json()
    assert manifest["requiresAccessToken"] is False
    first = manifest["output"][0]["url"].removeprefix("http://localhost")
    response = client.get(first)
    assert response.status_code == 200
    response.close()


def test_static_tokens_require_the_token_for_files(app_for: Callable[..., Any],
                                                   tmp_path: Path) -> None:
    app = app_for(IASTM_API_TOKENS="dev:read+write", IASTM_EXPORT_DIR=str(tmp_path / "x"),
                  IASTM_EXPORT_POLL_SECONDS="0")
    client = app.test_client()
    load(client, second_clinic=False)
    kicked = client.get("/fhir/Patient/$export", headers={
        "Accept": "application/fhir+json", "Prefer": "respond-async", **STATIC})
    assert kicked.status_code == 202
    assert app.extensions["fhir_iastm"].exporter.run_next()
    location = kicked.headers["Content-Location"].removeprefix("http://localhost")
    manifest = client.get(location, headers=STATIC).get_json()
    assert manifest["requiresAccessToken"] is True
    first = manifest["output"][0]["url"].removeprefix("http://localhost")
    assert client.get(first).status_code == 401
    response = client.get(first, headers=STATIC)
    assert response.status_code == 200
    response.close()
