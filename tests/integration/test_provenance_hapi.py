"""Every pushed transaction carries a Provenance: HAPI accepts it, resolves its references, and
keeps one per session however often the session is pushed (``mapping.provenance``)."""

from __future__ import annotations

import copy
import uuid

import pytest

from fhir_iastm.client import FhirClient
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.mapping.provenance import provenance_id
from fhir_iastm.records import load_record
from fhir_iastm.sync.push import push_record
from tests.strategies import example, random_npi

pytestmark = pytest.mark.integration
SETTINGS = MappingSettings()
CANON = SETTINGS.base


def test_hapi_accepts_it_and_a_repush_keeps_one_provenance(hapi_base_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    raw = example("good-01")
    raw["session_id"] = f"PROV-{tag}"
    raw["patient"]["mrn"] = f"MRN-{tag}"
    raw["clinic"]["clinic_id"] = f"CL-{tag}"
    raw["clinic"]["npi"], raw["therapist"]["npi"] = random_npi(), random_npi()
    client = FhirClient(hapi_base_url)
    try:
        first = push_record(client, load_record(raw), settings=SETTINGS)
        assert first.status == "pushed"
        pid = provenance_id(CANON, raw["session_id"])
        stored = client.read("Provenance", pid)
        procedure = first.fhir_ids[f"{CANON}/sid/iastm-session|{raw['session_id']}"]
        targets = {t["reference"] for t in stored["target"]}
        assert procedure in targets  # resolved to the server's ids inside the transaction
        assert all(t.split("/")[0] in ("Encounter", "Condition", "Procedure", "Observation")
                   for t in targets)
        who = [a["who"]["reference"].split("/")[0] for a in stored["agent"]]
        assert who == ["Organization", "Device"]
        again = push_record(client, load_record(raw), settings=SETTINGS)
        assert again.status == "unchanged"
        newer = copy.deepcopy(raw) | {"record_version": raw["record_version"] + 1,
                                      "notes": "amended"}
        assert push_record(client, load_record(newer), settings=SETTINGS).status == "pushed"
        for_session = client.search("Provenance", [("target", procedure), ("_summary", "count")],
                                    cache_control="no-cache")
        assert for_session["total"] == 1
        latest = client.read("Provenance", pid)
        assert latest["extension"][0]["valuePositiveInt"] == newer["record_version"]
        devices = client.search("Device", [("identifier", f"{CANON}/sid/software|fhir-iastm"),
                                           ("_summary", "count")], cache_control="no-cache")
        assert devices["total"] == 1
    finally:
        client.close()
