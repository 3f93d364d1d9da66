"""The facade driven by a real FHIR client: fhirpy's sync client over HTTP.

The app runs on 127.0.0.1 (werkzeug, threads) on a fresh SQLite store; one run's records are
stored through ``POST /api/sessions``. Expected answers come from mapping the same records
(``support.expected_resources``), not from the facade.
"""

from __future__ import annotations

from typing import Any

import pytest
from fhirpy import SyncFHIRClient

from tests.facade.support import (
    PATIENTS,
    RESOURCE_SYSTEM,
    SESSION_SYSTEM,
    Run,
    business_key,
    entries,
)


@pytest.fixture(scope="module")
def fhir(served: tuple[str, Run]) -> SyncFHIRClient:
    return SyncFHIRClient(served[0])


def keys(resources: list[Any]) -> set[frozenset[str]]:
    return {business_key(dict(r)) for r in resources}


def patient_id(fhir: SyncFHIRClient, run: Run, index: int) -> str:
    found = fhir.resources("Patient").search(identifier=run.patient_identifier(index)).fetch()
    assert len(found) == 1, found
    return str(found[0]["id"])


def of_patient(expected: dict[str, list[dict[str, Any]]], rtype: str, run: Run,
               index: int) -> set[frozenset[str]]:
    """Keys of the expected resources of one type whose subject is patient ``index``."""
    sessions = {r["session_id"] for r in run.records if r["patient"]["mrn"] == run.mrn(index)}
    return {business_key(r) for r in expected[rtype]
            if any(v.split("/")[0] in sessions for v in _resource_ids(r))}


def _resource_ids(resource: dict[str, Any]) -> list[str]:
    return [i["value"] for i in resource["identifier"] if i["system"] == RESOURCE_SYSTEM]


def test_patient_by_identifier_carries_the_record_demographics(fhir: SyncFHIRClient,
                                                               run: Run) -> None:
    found = fhir.resources("Patient").search(identifier=run.patient_identifier(1)).fetch_all()
    assert len(found) == 1
    patient = found[0]
    assert patient["name"][0]["family"] == PATIENTS[1].family
    assert patient["birthDate"] == PATIENTS[1].birth_date
    assert patient["meta"]["versionId"]


def test_procedures_of_a_patient_are_the_mapped_ones(fhir: SyncFHIRClient, run: Run,
                                                     expected: dict[str, Any]) -> None:
    pid = patient_id(fhir, run, 0)
    found = fhir.resources("Procedure").search(patient=pid).fetch_all()
    assert keys(found) == of_patient(expected, "Procedure", run, 0)
    assert all(p["subject"]["reference"] == f"Patient/{pid}" for p in found)


def test_count_asks_for_the_total_only(fhir: SyncFHIRClient, run: Run,
                                       expected: dict[str, Any]) -> None:
    pid = patient_id(fhir, run, 2)
    assert fhir.resources("Observation").search(patient=pid).count() == len(
        of_patient(expected, "Observation", run, 2))
    assert fhir.resources("Patient").search(identifier=run.patient_identifier(3)).count() == 1


def test_paging_follows_next_links_without_repeats(fhir: SyncFHIRClient, run: Run,
                                                   expected: dict[str, Any]) -> None:
    pid = patient_id(fhir, run, 0)
    found = list(fhir.resources("Observation").search(patient=pid).limit(2))
    ids = [r["id"] for r in found]
    assert len(ids) == len(set(ids)), "an entry came twice across pages"
    assert keys(found) == of_patient(expected, "Observation", run, 0)
    assert len(found) > 2, "the test needs more than one page"


def test_sort_by_date_both_directions(fhir: SyncFHIRClient, run: Run) -> None:
    pid = patient_id(fhir, run, 1)
    search = fhir.resources("Procedure").search(patient=pid)
    ascending = [p["performedPeriod"]["start"] for p in search.sort("date").fetch_all()]
    descending = [p["performedPeriod"]["start"] for p in search.sort("-date").fetch_all()]
    instants = sorted(ascending, key=_instant)
    assert ascending == instants
    assert descending == sorted(descending, key=_instant, reverse=True)
    assert _instant(ascending[0]) < _instant(ascending[-1]), "needs two distinct dates"


def _instant(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_include_brings_the_patient_of_each_procedure(fhir: SyncFHIRClient, run: Run) -> None:
    pid = patient_id(fhir, run, 2)
    bundle = (fhir.resources("Procedure").search(patient=pid)
              .include("Procedure", "patient").fetch_raw())
    matches, included = entries(bundle, "match"), entries(bundle, "include")
    assert matches
    assert all(r["resourceType"] == "Procedure" for r in matches)
    assert [(r["resourceType"], r["id"]) for r in included] == [("Patient", pid)]


def test_revinclude_brings_the_procedures_of_a_patient(fhir: SyncFHIRClient, run: Run,
                                                       expected: dict[str, Any]) -> None:
    bundle = (fhir.resources("Patient").search(identifier=run.patient_identifier(0))
              .revinclude("Procedure", "patient").fetch_raw())
    assert len(entries(bundle, "match")) == 1
    included = entries(bundle, "include")
    assert keys(included) == of_patient(expected, "Procedure", run, 0)


def test_read_by_reference(fhir: SyncFHIRClient, run: Run) -> None:
    session = run.records[3]["session_id"]
    procedure = fhir.resources("Procedure").search(
        identifier=f"{SESSION_SYSTEM}|{session}").get()
    patient = procedure["subject"].to_resource()
    assert patient["resourceType"] == "Patient"
    assert {i["value"] for i in patient["identifier"]} == {run.mrn(1)}
    encounter = procedure["encounter"].to_resource()
    assert encounter["resourceType"] == "Encounter"
    assert encounter["subject"]["reference"] == procedure["subject"]["reference"]
    again = fhir.reference("Patient", patient["id"]).to_resource()
    assert again["id"] == patient["id"]


def test_code_token_with_system_and_comma_or(fhir: SyncFHIRClient, run: Run,
                                             expected: dict[str, Any]) -> None:
    pid = patient_id(fhir, run, 2)
    found = fhir.resources("Observation").search(
        patient=pid, code="http://loinc.org|72514-3,|no-such-code").fetch_all()
    want = {business_key(o) for o in expected["Observation"]
            if o["code"]["coding"][0]["code"] == "72514-3"} & of_patient(
        expected, "Observation", run, 2)
    assert want
    assert keys(found) == want


def test_elements_trims_the_resources(fhir: SyncFHIRClient, run: Run) -> None:
    pid = patient_id(fhir, run, 0)
    found = fhir.resources("Procedure").search(patient=pid).elements("status").fetch_all()
    assert found
    for procedure in found:
        assert "status" in procedure
        assert "code" not in procedure
        assert "subject" not in procedure
