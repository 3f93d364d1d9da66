"""The Provenance and Device every pushed transaction carries (``mapping.provenance``): shape,
R4 validity, determinism (on the real HAPI server: tests/integration/test_provenance_hapi.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

from fhir.resources.R4B.device import Device
from fhir.resources.R4B.provenance import Provenance

from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.mapping.ids import identifier_query
from fhir_iastm.mapping.provenance import provenance_entries, provenance_id
from fhir_iastm.records import load_record
from tests.strategies import example

SETTINGS = MappingSettings()
CANON = SETTINGS.base


def entries_for(raw: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    record = load_record(raw)
    bundle = to_fhir(record, SETTINGS)
    return bundle, provenance_entries(bundle, record, SETTINGS)


def test_the_provenance_names_targets_agents_entity_and_time() -> None:
    raw = example("good-06")
    bundle, (device, entry) = entries_for(raw)
    provenance = entry["resource"]
    owned = [e["fullUrl"] for e in bundle["entry"] if e["request"]["method"] == "PUT"]
    assert [t["reference"] for t in provenance["target"]] == owned
    assert len(owned) >= 4
    organization = next(e["fullUrl"] for e in bundle["entry"]
                        if e["resource"]["resourceType"] == "Organization")
    assert [(a["type"]["coding"][0]["code"], a["who"]["reference"])
            for a in provenance["agent"]] == [("author", organization),
                                              ("assembler", device["fullUrl"])]
    [entity] = provenance["entity"]
    assert entity["role"] == "source"
    assert entity["what"]["identifier"] == {"system": f"{CANON}/sid/iastm-session",
                                            "value": raw["session_id"]}
    assert provenance["extension"] == [{
        "url": f"{CANON}/StructureDefinition/source-record-version",
        "valuePositiveInt": raw["record_version"]}]
    assert provenance["recorded"] == raw["recorded_at"]
    assert entry["request"] == {"method": "PUT",
                                "url": f"Provenance/{provenance_id(CANON, raw['session_id'])}"}
    assert device["request"]["method"] == "POST"
    assert device["request"]["ifNoneExist"] == identifier_query(f"{CANON}/sid/software",
                                                                "fhir-iastm")
    Provenance.model_validate(provenance)  # R4 (R4B models: same Provenance and Device)
    Device.model_validate(device["resource"])
    text = json.dumps(provenance)
    for phi in (raw["patient"]["mrn"], raw["patient"]["family_name"],
                raw["patient"]["birth_date"]):
        assert phi not in text


def test_one_provenance_id_per_session_whatever_the_version() -> None:
    raw = example("good-01")
    newer = copy.deepcopy(raw) | {"record_version": raw["record_version"] + 1}
    first, second = entries_for(raw)[1], entries_for(newer)[1]
    assert first[1]["request"] == second[1]["request"]
    assert entries_for(raw)[1] == first  # deterministic
    other = copy.deepcopy(raw) | {"session_id": "RBPT-2025-999999"}
    assert entries_for(other)[1][1]["request"] != first[1]["request"]
