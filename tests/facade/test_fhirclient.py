"""The facade driven by the SMART on FHIR Python client (``fhirclient``, R4 models) over HTTP.

fhirclient parses every answer into its strict R4 models (a malformed element raises), reads the
CapabilityStatement first, resolves references from the included entries of a searchset Bundle
(by ``fullUrl``) or by a read, and follows ``next`` links.
"""

from __future__ import annotations

from typing import Any

import pytest
from fhirclient import client as smart_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.encounter import Encounter
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.models.procedure import Procedure
from fhirclient.server import FHIRServer

from tests.facade.support import (
    PATIENTS,
    SESSION_SYSTEM,
    Run,
    business_key,
    expected_resources,
)


@pytest.fixture(scope="module")
def server(served: tuple[str, Run]) -> FHIRServer:
    """The client's server object (fhirclient joins paths to a base ending in '/')."""
    smart = smart_client.FHIRClient(settings={"app_id": "fhir-iastm-tests",
                                              "api_base": served[0] + "/"})
    return smart.server


def patient(server: FHIRServer, run: Run, index: int) -> Patient:
    found = list(Patient.where({"identifier": run.patient_identifier(index)})
                 .perform_resources_iter(server))
    assert len(found) == 1
    return found[0]


def session_keys(resources: list[Any]) -> set[frozenset[str]]:
    return {business_key(r.as_json()) for r in resources}


def test_capability_statement_parses_in_the_r4_models(server: FHIRServer) -> None:
    statement = server.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    served = {r.type: r for r in statement.rest[0].resource}
    assert {"Procedure", "Observation", "Condition", "Encounter", "Patient", "Practitioner",
            "Organization"} <= set(served)
    procedure = served["Procedure"]
    assert {"patient", "date", "code"} <= {p.name for p in procedure.searchParam}
    assert "Procedure:patient" in (procedure.searchInclude or [])
    assert statement.rest[0].security is not None


def test_patient_search_by_identifier(server: FHIRServer, run: Run) -> None:
    found = patient(server, run, 3)
    assert found.name[0].family == PATIENTS[3].family
    assert found.gender == PATIENTS[3].gender
    assert found.meta is not None
    assert found.meta.versionId
    assert found.meta.lastUpdated


def test_include_resolves_the_subject_from_the_bundle(server: FHIRServer, run: Run) -> None:
    subject = patient(server, run, 1)
    search = Procedure.where({"patient": subject.id}).include("subject")
    bundles = list(search.perform_iter(server))
    procedures = [e.resource for b in bundles for e in b.entry or []
                  if isinstance(e.resource, Procedure)]
    assert procedures
    included = [e.resource for b in bundles for e in b.entry or []
                if e.search is not None and e.search.mode == "include"]
    assert [(type(r), r.id) for r in included] == [(Patient, subject.id)]
    for procedure in procedures:
        resolved = procedure.subject.resolved(Patient)
        assert resolved is not None
        assert resolved.id == subject.id


def test_revinclude_of_observations_on_a_patient(server: FHIRServer, run: Run) -> None:
    search = (Patient.where({"identifier": run.patient_identifier(2)})
              .include("subject", Observation, reverse=True))
    bundle = next(search.perform_iter(server))
    assert isinstance(bundle, Bundle)
    matches = [e.resource for e in bundle.entry if e.search.mode == "match"]
    observations = [e.resource for e in bundle.entry if e.search.mode == "include"]
    assert [type(m) for m in matches] == [Patient]
    want = {business_key(o) for o in expected_resources(run)["Observation"]
            if o["identifier"][0]["value"].startswith(
                tuple(r["session_id"] + "/" for r in run.records
                      if r["patient"]["mrn"] == run.mrn(2)))}
    assert want
    assert session_keys(observations) == want


def test_count_sort_and_paging(server: FHIRServer, run: Run) -> None:
    subject = patient(server, run, 0)
    search = Observation.where({"patient": subject.id, "_count": "3", "_sort": "date"})
    bundles = list(search.perform_iter(server))
    assert len(bundles) > 1, "the test needs several pages"
    assert all(len(b.entry or []) <= 3 for b in bundles)
    found = [e.resource for b in bundles for e in b.entry or []]
    ids = [o.id for o in found]
    assert len(ids) == len(set(ids))
    instants = [o.effectiveDateTime.datetime for o in found]
    assert instants == sorted(instants)
    assert bundles[0].total in (None, len(found))


def test_read_and_resolve_by_reference(server: FHIRServer, run: Run) -> None:
    session = run.records[4]["session_id"]
    (procedure,) = Procedure.where(
        {"identifier": f"{SESSION_SYSTEM}|{session}"}).perform_resources_iter(server)
    again = Procedure.read(procedure.id, server)
    assert again.id == procedure.id
    assert again.meta.versionId == procedure.meta.versionId
    encounter = procedure.encounter.resolved(Encounter)
    assert encounter is not None
    assert encounter.subject.reference == procedure.subject.reference
    subject = procedure.subject.resolved(Patient)
    assert subject is not None
    assert subject.identifier[0].value == run.mrn(2)
