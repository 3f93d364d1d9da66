"""``bulk-pull`` against the real HAPI server's Bulk Data export (the test server registers HAPI's
export provider, tests/fhir_server): sessions pushed to HAPI come back as the same records.

HAPI is shared by every test: the export is narrowed to this test's resources with
``_typeFilter`` (its Patient, their sessions' resources, the clinic and the therapist).
"""

from __future__ import annotations

import uuid

import pytest
import requests

from fhir_iastm.bulk_service import bulk_pull, make_bulk_client
from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.mapping import MappingSettings, canonical_for_roundtrip
from fhir_iastm.records import load_record
from fhir_iastm.sync.pull import PullError
from fhir_iastm.sync.push import push_record
from tests.integration.test_push_pull import CANON, GOOD, NPI, find, variant

pytestmark = pytest.mark.integration


def offers_export(base_url: str) -> bool:
    metadata = requests.get(f"{base_url}/metadata", headers={"Accept": "application/fhir+json"},
                            timeout=30).json()
    return any(op.get("name") == "export" for rest in metadata.get("rest", [])
               for op in rest.get("operation", []))


def test_bulk_pull_from_hapi_returns_the_pushed_sessions(hapi_base_url: str) -> None:
    assert offers_export(hapi_base_url), (
        f"{hapi_base_url} declares no $export: it predates tests/fhir_server's bulk export "
        "provider; restart it (scripts/hapi stop && scripts/hapi start)")
    client = FhirClient(hapi_base_url, retry=RetryPolicy(max_attempts=4))
    tag = uuid.uuid4().hex[:10]
    first = variant(GOOD[0], tag)
    second = variant(GOOD[1], f"{tag}b", shared=first)  # the same patient, clinic, therapist
    records = [load_record(first), load_record(second)]
    for record in records:
        push_record(client, record)
    clinic, mrn = first["clinic"]["clinic_id"], first["patient"]["mrn"]
    [patient] = find(client, "Patient", f"{CANON}/sid/clinic/{clinic}/mrn", mrn)
    [organization] = find(client, "Organization", f"{CANON}/sid/clinic", clinic)
    [therapist] = find(client, "Practitioner", NPI, first["therapist"]["npi"])
    mine = f"patient=Patient/{patient['id']}"
    filters = (f"Patient?_id={patient['id']}", f"Organization?_id={organization['id']}",
               f"Practitioner?_id={therapist['id']}", f"Encounter?{mine}",
               f"Condition?{mine}", f"Procedure?{mine}", f"Observation?{mine}")

    bulk = make_bulk_client(hapi_base_url, max_wait=600, max_retry_after=2)
    results = list(bulk_pull(bulk, settings=MappingSettings(), type_filters=filters))

    assert not [r for r in results if isinstance(r, PullError)]
    pulled = {r.session_id: canonical_for_roundtrip(r) for r in results}
    assert pulled == {r.session_id: canonical_for_roundtrip(r) for r in records}
