"""Provenance in Bulk Data exports (docs/smart-bulk.md#provenance): one per session, built from
its stored record as a push writes it; ``includeAssociatedData``; and a stored record that no
longer maps, reported in the ``error`` file while the export completes (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, update

from fhir_iastm.facade.provenance import session_provenance
from fhir_iastm.records.load import load_record, record_hash
from fhir_iastm.storage.schema import record_versions
from tests.api.bulk_support import GOOD, STATIC, Bulk

SESSION_TYPES = ("Encounter", "Condition", "Procedure", "Observation")


@pytest.fixture
def bulk(make_bulk: Callable[..., Bulk]) -> Bulk:
    return make_bulk()


def session_of(provenance: dict[str, Any]) -> str:
    return str(provenance["entity"][0]["what"]["identifier"]["value"])


def owned(exported: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {f"{t}/{r['id']}" for t in SESSION_TYPES for r in exported.get(t, [])}


def test_each_session_has_one_provenance_whose_targets_are_exported(bulk: Bulk) -> None:
    exported = bulk.resources(bulk.export())
    provenances = exported["Provenance"]
    sessions = [session_of(p) for p in provenances]
    assert len(sessions) == len(set(sessions)) == len(GOOD) + 1
    resources = owned(exported)
    targets = {t["reference"] for p in provenances for t in p["target"]}
    assert targets == resources  # every session resource is the target of its Provenance
    for provenance in provenances:
        assert provenance["meta"]["versionId"] == str(
            provenance["extension"][0]["valuePositiveInt"])
        assert provenance["meta"]["lastUpdated"].endswith("Z")
        who = {a["who"]["reference"].split("/")[0] for a in provenance["agent"]}
        assert who == {"Organization", "Device"}


def test_the_provenance_is_the_one_a_push_writes(bulk: Bulk) -> None:
    exported = bulk.resources(bulk.export(query_string={"_type": "Provenance"}))
    raw = json.loads(GOOD[0].read_text())
    mine = next(p for p in exported["Provenance"] if session_of(p) == raw["session_id"])
    record = load_record(raw)
    mapping = bulk.app.extensions["fhir_iastm"].mapping
    expected = session_provenance(record, replace(mapping, record_hash=record_hash(record)))
    assert {k: v for k, v in mine.items() if k != "meta"} == expected


def test_patient_level_provenance_is_of_the_patients_sessions(bulk: Bulk) -> None:
    everyone = bulk.resources(bulk.export("/fhir/Patient/$export"))["Patient"]
    chosen = everyone[0]["id"]
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{chosen}"}}]}
    exported = bulk.resources(bulk.export("/fhir/Patient/$export", json=body))
    targets = {t["reference"] for p in exported["Provenance"] for t in p["target"]}
    assert targets == owned(exported)
    assert 0 < len(exported["Provenance"]) < len(GOOD) + 1


@pytest.mark.parametrize("value", ["LatestProvenanceResources", "RelevantProvenanceResources"])
def test_associated_provenance_goes_with_the_exported_resources(bulk: Bulk, value: str) -> None:
    exported = bulk.resources(bulk.export(query_string={
        "_type": "Observation", "includeAssociatedData": value,
        "_typeFilter": "Observation?code=http://loinc.org|72514-3"}))
    assert set(exported) == {"Observation", "Provenance"}
    chosen = {f"Observation/{o['id']}" for o in exported["Observation"]}
    everything = bulk.resources(bulk.export(query_string={"_type": "Observation,Provenance"}))
    assert len(chosen) < len(everything["Observation"])  # the filter left some out
    for provenance in exported["Provenance"]:
        assert chosen & {t["reference"] for t in provenance["target"]}
    sessions_with = {session_of(p) for p in everything["Provenance"]
                     if chosen & {t["reference"] for t in p["target"]}}
    assert {session_of(p) for p in exported["Provenance"]} == sessions_with
    assert len(sessions_with) < len(everything["Provenance"])


def test_associated_provenance_needs_its_scope(make_bulk: Callable[..., Bulk]) -> None:
    narrow = make_bulk(scope="system/Procedure.rs")
    refused = narrow.kick_off(query_string={"_type": "Procedure",
                                            "includeAssociatedData": "LatestProvenanceResources"})
    assert refused.status_code == 403
    assert "Provenance" in refused.get_json()["issue"][0]["diagnostics"]


def test_provenance_cannot_be_type_filtered(bulk: Bulk) -> None:
    response = bulk.kick_off(query_string={"_typeFilter": "Provenance?_id=x"})
    assert response.status_code == 400
    assert "_typeFilter" in response.get_json()["issue"][0]["diagnostics"]


def test_since_exports_the_provenance_of_changed_sessions_only(bulk: Bulk) -> None:
    first = bulk.export()
    time.sleep(0.01)
    changed = json.loads(GOOD[1].read_text())
    changed["record_version"] += 1
    changed["notes"] = "re-assessed"
    assert bulk.client.post("/api/sessions", json=changed, headers=STATIC).status_code == 201
    later = bulk.resources(bulk.export(query_string={"_since": first["transactionTime"]}))
    assert [session_of(p) for p in later["Provenance"]] == [changed["session_id"]]
    assert later["Provenance"][0]["meta"]["versionId"] == str(changed["record_version"])


def test_a_stored_record_that_no_longer_maps_is_reported_and_the_export_completes(
        bulk: Bulk) -> None:
    store = bulk.app.extensions["fhir_iastm"].store
    broken = json.loads(GOOD[2].read_text())
    rv = record_versions
    with store.write() as conn:
        body = conn.execute(select(rv.c.body).where(rv.c.session_id == broken["session_id"])
                            ).scalar_one()
        del body["patient"]
        conn.execute(update(rv).where(rv.c.session_id == broken["session_id"])
                     .values(body=body))
    manifest = bulk.export()
    exported = bulk.resources(manifest)
    assert {session_of(p) for p in exported["Provenance"]} == \
        {json.loads(p.read_text())["session_id"] for p in GOOD} - {broken["session_id"]} | \
        {"OTHR-2025-000001"}
    assert len(exported["Encounter"]) == len(GOOD) + 1  # its indexed resources are still there
    assert [e["count"] for e in manifest["error"]] == [1]
    text = bulk.download(manifest["error"][0]["url"]).get_data(as_text=True)
    outcome = json.loads(text)
    assert outcome["resourceType"] == "OperationOutcome"
    first, *fields = outcome["issue"]
    assert first["details"]["coding"][0]["code"] == "E_UNMAPPABLE"
    assert f"'{broken['session_id']}' version {broken['record_version']}" in \
        first["diagnostics"]
    named = [x["valueString"] for f in fields for x in f.get("extension", [])]
    assert "patient" in named
