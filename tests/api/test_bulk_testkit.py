"""The checks of the Bulk Data Access v2.0.0 test kit, ported to pytest — one test per check, at
each export level (system, Patient, Group): operation support, no-auth reject, kick-off, status,
output, NDJSON validity and Content-Type, valid resources, at least two patients, the Group's
patient ids, cancel, each output format, ``_since``. The TLS checks of the kit do not apply to
this in-process test server (TLS is the reverse proxy's job, docs/smart-bulk.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from fhir_iastm.validation import validate
from tests.api.bulk_support import STATIC, Bulk, load

LEVELS = ["system", "patient", "group"]


@pytest.fixture
def bulk(app_for: Callable[..., Any], tmp_path: Any) -> Bulk:
    app = app_for(IASTM_SMART_AUTH="true", IASTM_API_TOKENS="dev:read+write",
                  IASTM_EXPORT_DIR=str(tmp_path / "exports"), IASTM_EXPORT_POLL_SECONDS="0")
    b = Bulk(app)
    load(b.client)
    return b


def path_of(bulk: Bulk, level: str) -> str:
    if level == "system":
        return "/fhir/$export"
    if level == "patient":
        return "/fhir/Patient/$export"
    groups = bulk.client.get("/fhir/Group", headers=bulk.auth).get_json()
    gid = next(e["resource"]["id"] for e in groups["entry"]
               if e["resource"]["name"] != "Other Clinic")
    return f"/fhir/Group/{gid}/$export"


@pytest.mark.parametrize("level", LEVELS)
def test_capability_statement_declares_the_export_operation(bulk: Bulk, level: str) -> None:
    cs = bulk.client.get("/fhir/metadata").get_json()
    assert "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data" in cs["instantiates"]
    rest = cs["rest"][0]
    if level == "system":
        ops = rest["operation"]
    else:
        rtype = "Patient" if level == "patient" else "Group"
        ops = next(r for r in rest["resource"] if r["type"] == rtype)["operation"]
    definition = {"system": "export", "patient": "patient-export", "group": "group-export"}[level]
    assert {"name": "export", "definition":
            f"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{definition}"} in ops


@pytest.mark.parametrize("level", LEVELS)
def test_kickoff_without_authorization_is_rejected(bulk: Bulk, level: str) -> None:
    response = bulk.kick_off(path_of(bulk, level), headers={"Authorization": None})
    assert response.status_code == 401
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("level", LEVELS)
def test_kickoff_answers_202_with_an_absolute_content_location(bulk: Bulk, level: str) -> None:
    response = bulk.kick_off(path_of(bulk, level))
    assert response.status_code == 202
    location = urlsplit(response.headers["Content-Location"])
    assert location.scheme == "http"
    assert location.netloc == "localhost"


@pytest.mark.parametrize("level", LEVELS)
def test_status_answers_202_then_200_with_the_manifest(bulk: Bulk, level: str) -> None:
    location = bulk.kick_off(path_of(bulk, level)).headers["Content-Location"]
    waiting = bulk.status(location)
    assert waiting.status_code == 202
    assert waiting.headers["X-Progress"]
    assert int(waiting.headers["Retry-After"]) >= 1
    bulk.work()
    done = bulk.status(location)
    assert done.status_code == 200
    assert done.mimetype == "application/json"
    assert done.headers["Expires"].endswith("GMT")


@pytest.mark.parametrize("level", LEVELS)
def test_manifest_has_the_required_fields(bulk: Bulk, level: str) -> None:
    path = path_of(bulk, level)
    manifest = bulk.export(path)
    assert manifest["transactionTime"].endswith("Z")
    assert manifest["request"] == f"http://localhost{path}"
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    assert manifest["output"]
    for item in manifest["output"]:
        assert set(item) == {"type", "url", "count"}
        assert item["url"].startswith("http://localhost/fhir/$export-file/")


@pytest.mark.parametrize("level", LEVELS)
def test_output_files_need_the_access_token(bulk: Bulk, level: str) -> None:
    manifest = bulk.export(path_of(bulk, level))
    url = manifest["output"][0]["url"]
    assert bulk.download(url, auth=False).status_code == 401
    assert bulk.download(url).status_code == 200


@pytest.mark.parametrize("level", LEVELS)
def test_output_content_type_is_fhir_ndjson(bulk: Bulk, level: str) -> None:
    manifest = bulk.export(path_of(bulk, level))
    for item in manifest["output"]:
        assert bulk.download(item["url"]).mimetype == "application/fhir+ndjson"


@pytest.mark.parametrize("level", LEVELS)
def test_ndjson_lines_are_resources_of_the_declared_type(bulk: Bulk, level: str) -> None:
    manifest = bulk.export(path_of(bulk, level))
    for item in manifest["output"]:
        text = bulk.download(item["url"]).get_data(as_text=True)
        lines = text.split("\n")
        assert lines[-1] == ""  # every line ends with a newline
        resources = [json.loads(line) for line in lines[:-1]]
        assert len(resources) == item["count"]
        assert {r["resourceType"] for r in resources} == {item["type"]}
        assert all(r["id"] for r in resources)


@pytest.mark.parametrize("level", LEVELS)
def test_exported_resources_are_valid(bulk: Bulk, level: str) -> None:
    profiles = bulk.app.extensions["fhir_iastm"].profiles
    exported = bulk.resources(bulk.export(path_of(bulk, level)))
    assert "Provenance" in exported
    for rtype, resources in exported.items():
        for resource in resources:
            errors = [i for i in validate(resource, profiles) if i.is_error]
            assert not errors, (level, rtype, resource["id"], errors[:3])


def test_group_export_patient_ids_match_the_group_members(bulk: Bulk) -> None:
    path = path_of(bulk, "group")
    gid = path.split("/")[3]
    group = bulk.client.get(f"/fhir/Group/{gid}", headers=bulk.auth).get_json()
    members = {m["entity"]["reference"] for m in group["member"]}
    exported = bulk.resources(bulk.export(path))["Patient"]
    assert {f"Patient/{p['id']}" for p in exported} == members
    assert len(members) >= 2


@pytest.mark.parametrize("level", LEVELS)
def test_at_least_two_patients_are_exported(bulk: Bulk, level: str) -> None:
    patients = bulk.resources(bulk.export(path_of(bulk, level)))["Patient"]
    assert len({p["id"] for p in patients}) >= 2


@pytest.mark.parametrize("level", LEVELS)
def test_a_cancelled_export_answers_202_then_404(bulk: Bulk, level: str) -> None:
    location = bulk.kick_off(path_of(bulk, level)).headers["Content-Location"]
    cancelled = bulk.status(location, "DELETE")
    assert cancelled.status_code == 202
    gone = bulk.status(location)
    assert gone.status_code == 404
    assert gone.get_json()["resourceType"] == "OperationOutcome"
    assert bulk.work() == 0  # the worker never runs it
    assert bulk.kick_off(path_of(bulk, level)).status_code == 202  # the client may start again


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("fmt", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_each_output_format_is_accepted(bulk: Bulk, level: str, fmt: str) -> None:
    manifest = bulk.export(path_of(bulk, level), query_string={"_outputFormat": fmt})
    assert manifest["output"]


@pytest.mark.parametrize("level", LEVELS)
def test_since_exports_only_what_changed_after_it(bulk: Bulk, level: str) -> None:
    path = path_of(bulk, level)
    first = bulk.export(path)
    time.sleep(0.01)
    changed = json.loads(sorted(bulk_examples())[0].read_text())
    changed["record_version"] += 1
    changed["pain"]["post"] = 2
    changed["notes"] = "re-assessed"
    assert bulk.client.post("/api/sessions", json=changed, headers=STATIC).status_code == 201
    later = bulk.export(path, query_string={"_since": first["transactionTime"]})
    exported = bulk.resources(later)
    assert exported  # the changed session's resources
    since = first["transactionTime"]
    for resources in exported.values():
        for resource in resources:
            assert resource["meta"]["lastUpdated"] > since
    everything = sum(o["count"] for o in first["output"])
    assert sum(o["count"] for o in later["output"]) < everything


def bulk_examples() -> list[Any]:
    from tests.api.bulk_support import GOOD

    return GOOD
