"""Checks on the conformance resources in profiles/ (docs/decisions.md#d1 to #d4, docs/mapping.md,
docs/codes.md, docs/decisions.md#d1).

What is checked here: every file parses with its fhir.resources R4B model and is named after its id; every
canonical it references resolves to a file in profiles/ or to an allowed external base; constraint keys are
unique per StructureDefinition; every FHIRPath expression compiles (fhirpathpy, R4 model) and — on hand-built
resources shaped as docs/mapping.md describes — holds on good data and fails on a targeted bad case;
the project
CodeSystems and ValueSets agree with each other; every standard code used is one that docs/codes.md
lists as
verified (or one HL7 publishes in the copied mCODE value sets).

Not checked here: full profile validation of instances (that is fhir_iastm/validation.py's job).
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from pathlib import Path

import pytest
from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models as fp_models

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
CANON = "https://iastm.example.org/fhir"
MCODE = "http://hl7.org/fhir/us/mcode"
LAT = f"{MCODE}/StructureDefinition/mcode-laterality-qualifier"
LOC = f"{MCODE}/StructureDefinition/mcode-body-location-qualifier"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
R4 = fp_models["r4"]

STANDARD_SYSTEMS = {SCT, LOINC, ICD, UCUM}
ALLOWED_EXTERNAL_PREFIXES = (
    "http://hl7.org/fhir/StructureDefinition/",
    "http://hl7.org/fhir/ValueSet/",
    "http://terminology.hl7.org/CodeSystem/",
)

# Standard codes that docs/codes.md marks verified (✅ / ⚠️) and that profiles/ may use, plus the
# codes HL7
# publishes in the copied mCODE 4.0.0 value sets (399488007 Midline, 106233006, 272424004, 255503000).
VERIFIED_SNOMED = {
    "91251008", "51998003", "266741004", "277132007",
    "202855006", "53286005", "202882003", "37785001", "481000119104", "73583000",
    "127949000", "56459004", "18033002", "72696002", "68367000", "29836001",
    "49076000", "16953009", "24136001", "70258002", "74670003",
    "49370004", "255561001", "255551008",
    "7771000", "24028007", "51440002",
    "302227002", "271813007", "71393004", "255604002", "6736007", "24484000",
}
MCODE_PUBLISHED_SNOMED = {"399488007", "106233006", "272424004", "255503000"}
VERIFIED_LOINC = {"72514-3", "82332-8", "82323-7"}  # pain NRS; KOOS JR, HOOS JR (docs/codes.md#loinc)


# ---------------------------------------------------------------------------------------------- loading
def _load_all() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(PROFILES.glob("*.json"))}


ALL = _load_all()
BY_URL = {r["url"]: r for r in ALL.values()}
SDS = {r["id"]: r for r in ALL.values() if r["resourceType"] == "StructureDefinition"}
CODESYSTEMS = {r["url"]: r for r in ALL.values() if r["resourceType"] == "CodeSystem"}
VALUESETS = {r["url"]: r for r in ALL.values() if r["resourceType"] == "ValueSet"}
MCODE_COPIES = {f"{MCODE}/StructureDefinition/mcode-laterality-qualifier",
                f"{MCODE}/StructureDefinition/mcode-body-location-qualifier",
                f"{MCODE}/ValueSet/mcode-laterality-qualifier-vs",
                f"{MCODE}/ValueSet/mcode-body-location-qualifier-vs",
                f"{MCODE}/ValueSet/mcode-body-location-and-laterality-qualifier-vs"}

RESOURCE_PROFILES = {
    "iastm-procedure": "Procedure", "iastm-adjunct-procedure": "Procedure", "iastm-condition": "Condition",
    "iastm-pain-observation": "Observation", "iastm-rom-observation": "Observation",
    "iastm-prom-observation": "Observation", "iastm-patient": "Patient", "iastm-practitioner": "Practitioner",
    "iastm-organization": "Organization", "iastm-encounter": "Encounter",
}
EXTENSIONS = {  # id -> (value type, contexts) per docs/mapping.md and docs/decisions.md#d2 and #d7
    "iastm-technique": ("CodeableConcept", ["Procedure"]),
    "iastm-session-number": ("positiveInt", ["Procedure"]),
    "iastm-planned-sessions": ("positiveInt", ["Procedure"]),
    "iastm-duration": ("Duration", ["Procedure"]),
    "iastm-adverse-effect-severity": ("CodeableConcept", ["Procedure.complication"]),
    "iastm-adverse-effect-expected": ("boolean", ["Procedure.complication"]),
    "iastm-adverse-effect-site": ("CodeableConcept", ["Procedure.complication"]),
    "iastm-measurement-timing": ("code", ["Observation"]),
    "iastm-rom-mode": ("code", ["Observation"]),
    "source-record-version": ("positiveInt", ["DomainResource"]),
    "source-record-hash": ("string", ["DomainResource"]),
    "mcode-laterality-qualifier": ("CodeableConcept", None),
    "mcode-body-location-qualifier": ("CodeableConcept", None),
}
MCODE_CONTEXTS = {"Procedure.bodySite", "Condition.bodySite", "Observation.bodySite", "Specimen.collection.bodySite",
                  "ServiceRequest.bodySite", "DomainResource", "Extension", "CodeableConcept"}


def _model(resource_type: str):
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def _walk(node, path=()):
    """Yield (path, key, value) for every key of every dict in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, path + (key,))
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, path)


def _constraints(sd: dict):
    for element in sd.get("differential", {}).get("element", []):
        for constraint in element.get("constraint", []):
            yield element, constraint


def _cs_codes(concepts):
    for concept in concepts:
        yield concept["code"]
        yield from _cs_codes(concept.get("concept", []))


# ---------------------------------------------------------------------------------------------- files
def test_profiles_directory_has_every_expected_resource():
    expected = {f"StructureDefinition-{i}.json" for i in list(RESOURCE_PROFILES) + list(EXTENSIONS)}
    expected |= {f"CodeSystem-{i}.json" for i in ["iastm-technique", "iastm-instrument", "iastm-body-site",
                                                   "iastm-observation", "iastm-adjunct", "iastm-measurement-timing",
                                                   "iastm-rom-method"]}
    expected |= {"ValueSet-mcode-laterality-qualifier-vs.json", "ValueSet-mcode-body-location-qualifier-vs.json",
                 "ValueSet-iastm-body-location-qualifier.json", "ValueSet-iastm-technique.json",
                 "ConceptMap-iastm-body-site-to-snomed.json"}
    assert expected <= set(ALL), sorted(expected - set(ALL))


@pytest.mark.parametrize("name", sorted(ALL))
def test_file_parses_with_its_r4b_model_and_is_named_after_its_id(name):
    resource = ALL[name]
    _model(resource["resourceType"]).model_validate(resource)
    assert resource["id"] == resource["url"].rsplit("/", 1)[1]
    assert name == f"{resource['resourceType']}-{resource['id']}.json"
    if resource["url"] in MCODE_COPIES:
        assert resource["url"].startswith(f"{MCODE}/")
        assert (resource["status"], resource["version"]) == ("active", "4.0.0")
    else:
        assert resource["url"] == f"{CANON}/{resource['resourceType']}/{resource['id']}"
        assert (resource["status"], resource["version"]) == ("draft", "0.1.0")
    if resource["resourceType"] == "StructureDefinition":
        assert resource["fhirVersion"] == "4.0.1"


def test_urls_are_unique():
    urls = [r["url"] for r in ALL.values()]
    assert len(urls) == len(set(urls))


# ---------------------------------------------------------------------------------------------- canonicals
def _referenced_canonicals(resource: dict) -> list[tuple[str, str]]:
    """(where, canonical) for every canonical reference the brief asks us to resolve."""
    refs: list[tuple[str, str]] = []
    rtype = resource["resourceType"]
    if rtype == "StructureDefinition":
        refs.append(("baseDefinition", resource["baseDefinition"]))
        for element in resource["differential"]["element"]:
            for typ in element.get("type", []):
                refs += [(f"{element['id']} type.profile", p) for p in typ.get("profile", [])]
                refs += [(f"{element['id']} targetProfile", p) for p in typ.get("targetProfile", [])]
            if "valueSet" in element.get("binding", {}):
                refs.append((f"{element['id']} binding", element["binding"]["valueSet"]))
            for constraint in element.get("constraint", []):
                refs.append((f"{element['id']} constraint.source", constraint["source"]))
    elif rtype == "ValueSet":
        for part in ("include", "exclude"):
            for item in resource.get("compose", {}).get(part, []):
                refs += [(f"compose.{part}.valueSet", v) for v in item.get("valueSet", [])]
                if "system" in item:
                    refs.append((f"compose.{part}.system", item["system"]))
    elif rtype == "ConceptMap":
        for key in ("sourceCanonical", "targetCanonical", "sourceUri", "targetUri"):
            if key in resource:
                refs.append((key, resource[key]))
        for group in resource.get("group", []):
            refs += [("group.source", group["source"]), ("group.target", group["target"])]
    return refs


def _resolves(canonical: str) -> bool:
    url = canonical.split("|", 1)[0]
    if url in BY_URL:
        return True
    if url.startswith(CANON) or url.startswith(MCODE):
        return False  # our own (or copied) canonicals must be files in profiles/
    return url in STANDARD_SYSTEMS or url.startswith(ALLOWED_EXTERNAL_PREFIXES)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_referenced_canonical_resolves(name):
    unresolved = [(w, c) for w, c in _referenced_canonicals(ALL[name]) if not _resolves(c)]
    assert not unresolved


def test_every_valueset_of_ours_is_used_or_copied():
    used = {c.split("|")[0] for r in ALL.values() for _, c in _referenced_canonicals(r)}
    # Enforced by invariants iastm-proc-10 / iastm-cond-4 / iastm-obs-5 rather than by a slice binding (README).
    used.add(f"{CANON}/ValueSet/iastm-body-location-qualifier")
    unused = [u for u in VALUESETS if u not in used and u not in MCODE_COPIES]
    assert not unused


@pytest.mark.parametrize("sd_id,key", [("iastm-procedure", "iastm-proc-10"), ("iastm-condition", "iastm-cond-4"),
                                       ("iastm-rom-observation", "iastm-obs-5")])
def test_location_qualifier_invariant_lists_exactly_the_local_valueset(sd_id, key):
    local = VALUESETS[f"{CANON}/ValueSet/iastm-body-location-qualifier"]
    expected = {c["code"] for c in local["compose"]["include"][0]["concept"]}
    expression = _constraint(sd_id, key)["expression"]
    assert set(re.findall(r"code='([0-9]+)'", expression)) == expected
    assert f"url='{LOC}'" in expression


def test_no_profile_rebinds_the_mcode_extension_values():
    """HAPI 8.8 cannot generate a snapshot when a profile re-binds an mCODE qualifier value (the mCODE
    ValueSet is intensional SNOMED and cannot be expanded offline); the local list is an invariant instead."""
    for sd_id in RESOURCE_PROFILES:
        for element in SDS[sd_id]["differential"]["element"]:
            if ":laterality" in element["id"] or ":location-qualifier" in element["id"]:
                assert "binding" not in element, element["id"]


# ---------------------------------------------------------------------------------------------- SD structure
@pytest.mark.parametrize("sd_id", sorted(SDS))
def test_structure_definition_shape(sd_id):
    sd = SDS[sd_id]
    assert sd["derivation"] == "constraint"
    assert sd["baseDefinition"] == f"http://hl7.org/fhir/StructureDefinition/{sd['type']}"
    assert "snapshot" not in sd
    elements = sd["differential"]["element"]
    assert elements[0]["id"] == sd["type"]
    sliced: set[str] = set()
    ids = [e["id"] for e in elements]
    assert len(ids) == len(set(ids)), "duplicate element ids"
    for element in elements:
        assert element["path"] == ".".join(part.split(":")[0] for part in element["id"].split("."))
        assert element["id"].split(".")[0] == sd["type"]
        if "slicing" in element:
            assert element["slicing"]["rules"] == "open"
            assert all(d["type"] in ("value", "pattern") for d in element["slicing"]["discriminator"])
            sliced.add(element["id"])
        if "sliceName" in element:
            assert element["id"].endswith(f":{element['sliceName']}")
            assert element["id"].rsplit(":", 1)[0] in sliced, f"{element['id']} sliced before slicing is declared"


@pytest.mark.parametrize("sd_id", sorted(RESOURCE_PROFILES))
def test_resource_profiles_are_constraints_on_base_r4(sd_id):
    sd = SDS[sd_id]
    assert sd["kind"] == "resource" and sd["type"] == RESOURCE_PROFILES[sd_id]
    assert "us/core" not in json.dumps(sd["baseDefinition"])


@pytest.mark.parametrize("ext_id", sorted(EXTENSIONS))
def test_extension_definitions(ext_id):
    sd = SDS[ext_id]
    value_type, contexts = EXTENSIONS[ext_id]
    assert (sd["kind"], sd["type"]) == ("complex-type", "Extension")
    elements = {e["id"]: e for e in sd["differential"]["element"]}
    assert elements["Extension.url"]["fixedUri"] == sd["url"]
    assert elements["Extension.extension"]["max"] == "0"
    value = elements["Extension.value[x]"]
    assert value["min"] == 1 and [t["code"] for t in value["type"]] == [value_type]
    found = {c["expression"] for c in sd["context"]}
    assert all(c["type"] == "element" for c in sd["context"])
    assert found == (set(contexts) if contexts else MCODE_CONTEXTS)
    if value_type in ("CodeableConcept", "code"):
        # adverse-effect-site carries local + SNOMED codings: a required CodeableConcept binding makes HAPI 8.8
        # reject it although the local coding is a member (README), so that one is extensible.
        expected = "extensible" if ext_id == "iastm-adverse-effect-site" else "required"
        assert value["binding"]["strength"] == expected


def test_mcode_value_sets_as_published():
    lat = VALUESETS[f"{MCODE}/ValueSet/mcode-laterality-qualifier-vs"]
    codes = {c["code"] for inc in lat["compose"]["include"] for c in inc["concept"]}
    assert codes == {"7771000", "24028007", "51440002", "399488007"}
    loc = VALUESETS[f"{MCODE}/ValueSet/mcode-body-location-qualifier-vs"]
    assert loc["compose"]["exclude"][0]["valueSet"] == [f"{MCODE}/ValueSet/mcode-laterality-qualifier-vs"]
    local = VALUESETS[f"{CANON}/ValueSet/iastm-body-location-qualifier"]
    assert {c["code"] for c in local["compose"]["include"][0]["concept"]} == {"49370004", "255561001", "255551008"}


def _element(sd_id: str, element_id: str) -> dict:
    return next(e for e in SDS[sd_id]["differential"]["element"] if e["id"] == element_id)


@pytest.mark.parametrize("sd_id,element_id,minimum,maximum", [
    ("iastm-procedure", "Procedure.identifier:iastm-session", 1, "1"),
    ("iastm-procedure", "Procedure.extension:technique", 1, "1"),
    ("iastm-procedure", "Procedure.extension:session-number", 1, "1"),
    ("iastm-procedure", "Procedure.extension:planned-sessions", 0, "1"),
    ("iastm-procedure", "Procedure.code.coding:iastm", 1, "1"),
    ("iastm-procedure", "Procedure.bodySite.extension:laterality", 1, "1"),
    ("iastm-procedure", "Procedure.complication.extension:severity", 1, "1"),
    ("iastm-adjunct-procedure", "Procedure.partOf", 1, "1"),
    ("iastm-condition", "Condition.category:us-core", 1, "1"),
    ("iastm-condition", "Condition.code.coding:icd10cm", 1, "1"),
    ("iastm-pain-observation", "Observation.category:survey", 1, "1"),
    ("iastm-pain-observation", "Observation.extension:timing", 1, "1"),
    ("iastm-rom-observation", "Observation.category:exam", 1, "1"),
    ("iastm-rom-observation", "Observation.extension:rom-mode", 1, "1"),
    ("iastm-prom-observation", "Observation.category:survey", 1, "1"),
])
def test_required_slices(sd_id, element_id, minimum, maximum):
    element = _element(sd_id, element_id)
    assert (element["min"], element["max"]) == (minimum, maximum)


def test_conditional_requirements_are_invariants_not_cardinalities():
    proc = SDS["iastm-procedure"]
    ids = {e["id"]: e for e in proc["differential"]["element"]}
    for element_id in ("Procedure.performed[x]", "Procedure.reasonReference", "Procedure.statusReason"):
        assert ids[element_id].get("min", 0) == 0


# ---------------------------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("sd_id", sorted(SDS))
def test_constraint_keys_unique_and_complete(sd_id):
    sd = SDS[sd_id]
    keys = [c["key"] for _, c in _constraints(sd)]
    assert len(keys) == len(set(keys)), keys
    for _, constraint in _constraints(sd):
        assert constraint["severity"] in ("error", "warning")
        assert constraint["human"] and constraint["expression"]
        assert constraint["source"] == sd["url"]
        assert not constraint["key"].startswith(("con-", "per-", "ele-", "dom-", "ext-", "obs-"))


@pytest.mark.parametrize("sd_id,key", [(i, c["key"]) for i in sorted(SDS) for _, c in _constraints(SDS[i])])
def test_constraint_expression_compiles(sd_id, key):
    expression = next(c["expression"] for _, c in _constraints(SDS[sd_id]) if c["key"] == key)
    fp_compile(expression, model=R4)


def test_no_placeholder_left_in_expressions():
    for sd in SDS.values():
        for _, constraint in _constraints(sd):
            assert "{C}" not in constraint["expression"] and "{LAT}" not in constraint["expression"]
            assert "{CANON}" not in constraint["expression"]


def test_expected_invariant_keys_present():
    expected = {
        "iastm-procedure": {"us-core-7"} | {f"iastm-proc-{n}" for n in range(1, 11)},
        "iastm-condition": {"iastm-cond-1", "iastm-cond-2r", "iastm-cond-2l", "iastm-cond-2b", "iastm-cond-2u",
                            "iastm-cond-3",
                            "iastm-cond-4"},
        "iastm-pain-observation": {"us-core-1", "us-core-2", "us-core-3", "iastm-obs-1", "iastm-obs-2", "iastm-obs-4"},
        "iastm-rom-observation": {"us-core-1", "us-core-2", "us-core-3", "iastm-obs-3", "iastm-obs-4", "iastm-obs-5"},
        "iastm-prom-observation": {"us-core-1", "us-core-2", "us-core-3", "iastm-obs-4"},
        "iastm-patient": {"us-core-6"},
        "iastm-practitioner": {"us-core-16", "us-core-17"},
        "iastm-organization": {"us-core-16", "us-core-17"},
    }
    for sd_id, keys in expected.items():
        assert {c["key"] for _, c in _constraints(SDS[sd_id])} == keys, sd_id
    proc5 = _constraint("iastm-procedure", "iastm-proc-5")["expression"]
    assert proc5 == f"identifier.where(system='{CANON}/sid/iastm-session').count() = 1"
    assert "start < end" in _constraint("iastm-procedure", "iastm-proc-1")["expression"]
    assert _constraint("iastm-procedure", "iastm-proc-6")["severity"] == "warning"


def _constraint(sd_id: str, key: str) -> dict:
    return next(c for _, c in _constraints(SDS[sd_id]) if c["key"] == key)


def _context_path(sd_id: str, key: str) -> str:
    """FHIRPath that selects the instances the constraint is evaluated on (its element)."""
    element = next(e for e, c in _constraints(SDS[sd_id]) if c["key"] == key)
    if element["id"] == SDS[sd_id]["type"]:
        return ""
    path = element["path"].replace("[x]", "")
    if ":NPI" in element["id"]:
        return f"{path}.where(system='http://hl7.org/fhir/sid/us-npi')"
    return path


def _holds(sd_id: str, key: str, resource: dict) -> bool:
    """Evaluate one invariant the way docs/decisions.md#d3 says: empty result = failure."""
    expression = _constraint(sd_id, key)["expression"]
    context = _context_path(sd_id, key)
    if not context:
        result = fp_compile(expression, model=R4)(resource)
        return result == [True]
    results = fp_compile(f"{context}.select(({expression}).exists() and ({expression}))", model=R4)(resource)
    return all(r is True for r in results)


# ---- sample resources shaped as docs/mapping.md describes (good-03: HawkGrips, right plantar
# fascia, bruising)
def _lat(code):
    return {"url": LAT, "valueCodeableConcept": {"coding": [{"system": SCT, "code": code}]}}


def _ext(name, **value):
    return {"url": f"{CANON}/StructureDefinition/{name}", **value}


def _loc(code):
    return {"url": LOC, "valueCodeableConcept": {"coding": [{"system": SCT, "code": code}]}}


ELBOW = {
    "extension": [_lat("7771000"), _loc("255561001")],
    "coding": [{"system": f"{CANON}/CodeSystem/iastm-body-site", "code": "elbow-medial"},
               {"system": SCT, "code": "127949000"}],
    "text": "left medial elbow",
}
SITE = {
    "extension": [_lat("24028007")],
    "coding": [{"system": f"{CANON}/CodeSystem/iastm-body-site", "code": "plantar-fascia"},
               {"system": SCT, "code": "56459004", "display": "Foot structure"}],
    "text": "right plantar fascia",
}
PROCEDURE = {
    "resourceType": "Procedure",
    "meta": {"profile": [f"{CANON}/StructureDefinition/iastm-procedure"]},
    "extension": [
        _ext("iastm-technique", valueCodeableConcept={"coding": [
            {"system": f"{CANON}/CodeSystem/iastm-technique", "code": "hawkgrips"}]}),
        _ext("iastm-session-number", valuePositiveInt=5),
        _ext("iastm-planned-sessions", valuePositiveInt=10),
        _ext("source-record-version", valuePositiveInt=2),
        _ext("source-record-hash", valueString="0" * 64),
    ],
    "identifier": [{"system": f"{CANON}/sid/iastm-session", "value": "RBPT-2025-000518"},
                   {"system": f"{CANON}/sid/iastm-session-resource", "value": "RBPT-2025-000518/procedure"}],
    "status": "completed",
    "code": {"coding": [{"system": SCT, "code": "91251008"},
                        {"system": f"{CANON}/CodeSystem/iastm-technique", "code": "iastm"}],
             "text": "Instrument-assisted soft tissue mobilization (HawkGrips)"},
    "subject": {"reference": "urn:uuid:0b4a1f51-1c8e-5d5e-8a3c-2f1f6c1d1e01"},
    "encounter": {"reference": "urn:uuid:0b4a1f51-1c8e-5d5e-8a3c-2f1f6c1d1e02"},
    "performedPeriod": {"start": "2025-04-02T08:15:00-05:00", "end": "2025-04-02T08:45:00-05:00"},
    "reasonReference": [{"reference": "urn:uuid:0b4a1f51-1c8e-5d5e-8a3c-2f1f6c1d1e03"}],
    "bodySite": [SITE],
    "complication": [{
        "extension": [
            _ext("iastm-adverse-effect-severity", valueCodeableConcept={"coding": [{"system": SCT, "code": "255604002"}]}),
            _ext("iastm-adverse-effect-expected", valueBoolean=True),
            _ext("iastm-adverse-effect-site", valueCodeableConcept=SITE),
        ],
        "coding": [{"system": SCT, "code": "302227002"}], "text": "bruising"}],
    "usedCode": [{"coding": [{"system": f"{CANON}/CodeSystem/iastm-instrument", "code": "steel-double-bevel"}]}],
}
CANCELLED = {**copy.deepcopy(PROCEDURE), "status": "not-done", "statusReason": {"text": "Patient ill"}}
for _key in ("performedPeriod", "complication", "usedCode"):
    CANCELLED.pop(_key)
ADJUNCT = {
    "resourceType": "Procedure",
    "extension": [_ext("iastm-duration", valueDuration={"value": 10, "unit": "min", "system": UCUM, "code": "min"})],
    "identifier": [{"system": f"{CANON}/sid/iastm-session-resource", "value": "RBPT-2025-000518/adjunct/stretching"}],
    "partOf": [{"reference": "urn:uuid:0b4a1f51-1c8e-5d5e-8a3c-2f1f6c1d1e04"}],
    "status": "completed",
    "code": {"coding": [{"system": f"{CANON}/CodeSystem/iastm-adjunct", "code": "stretching"},
                        {"system": SCT, "code": "51998003"}]},
    "subject": {"reference": "urn:uuid:0b4a1f51-1c8e-5d5e-8a3c-2f1f6c1d1e01"},
    "performedPeriod": {"start": "2025-04-02T08:15:00-05:00", "end": "2025-04-02T08:45:00-05:00"},
    "reasonReference": [{"reference": "urn:uuid:0b4a1f51-1c8e-5d5e-8a3c-2f1f6c1d1e03"}],
}


def _condition(icd, laterality=None, snomed=None):
    resource = {
        "resourceType": "Condition",
        "identifier": [{"system": f"{CANON}/sid/iastm-session-resource", "value": f"S/condition/{icd}"}],
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "encounter-diagnosis"}]}],
        "code": {"coding": [{"system": ICD, "code": icd}] + ([{"system": SCT, "code": snomed}] if snomed else []),
                 "text": icd},
        "subject": {"reference": "urn:uuid:0b4a1f51-1c8e-5d5e-8a3c-2f1f6c1d1e01"},
    }
    if laterality:
        resource["bodySite"] = [{"extension": [_lat(laterality)], "text": "side"}]
    return resource


def _observation(code_coding, category, value, timing="pre", **extra):
    resource = {
        "resourceType": "Observation",
        "extension": [_ext("iastm-measurement-timing", valueCode=timing)] if timing else [],
        "identifier": [{"system": f"{CANON}/sid/iastm-session-resource", "value": "S/obs/x"}],
        "partOf": [{"reference": "urn:uuid:0b4a1f51-1c8e-5d5e-8a3c-2f1f6c1d1e04"}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": category}]}],
        "code": {"coding": [code_coding]},
        "subject": {"reference": "urn:uuid:0b4a1f51-1c8e-5d5e-8a3c-2f1f6c1d1e01"},
        "effectiveDateTime": "2025-04-02T08:15:00-05:00",
        "valueQuantity": value,
    }
    resource.update(extra)
    return resource


PAIN = _observation({"system": LOINC, "code": "72514-3"}, "survey",
                    {"value": 7, "unit": "score", "system": UCUM, "code": "{score}"})
ROM = _observation({"system": f"{CANON}/CodeSystem/iastm-observation", "code": "rom-knee-extension"}, "exam",
                   {"value": -6, "unit": "deg", "system": UCUM, "code": "deg"}, timing="post",
                   bodySite={"extension": [_lat("24028007")], "coding": [{"system": SCT, "code": "49076000"}]})
PROM = _observation({"system": f"{CANON}/CodeSystem/iastm-observation", "code": "lefs-total"}, "survey",
                    {"value": 58, "unit": "score", "system": UCUM, "code": "{score}"}, timing=None)
PATIENT = {"resourceType": "Patient", "identifier": [{"system": f"{CANON}/sid/clinic/RBPT-01/mrn", "value": "MRN-1"}],
           "name": [{"family": "Okafor", "given": ["Grace"]}], "gender": "female"}
PRACTITIONER = {"resourceType": "Practitioner",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1987654328"}],
                "name": [{"family": "Whitaker"}]}
ORGANIZATION = {"resourceType": "Organization", "active": True, "name": "Riverbend Physical Therapy",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"},
                               {"system": f"{CANON}/sid/clinic", "value": "RBPT-01"}]}

GOOD = {
    "iastm-procedure": [PROCEDURE, CANCELLED, {**PROCEDURE, "bodySite": [SITE, ELBOW]}],
    "iastm-adjunct-procedure": [ADJUNCT],
    "iastm-condition": [_condition("M77.11", "24028007", "202855006"), _condition("M77.02", "7771000", "53286005"),
                        _condition("M72.2", "24028007", "202882003"), _condition("S76.312D", "7771000"),
                        _condition("T84.84XD"), _condition("G89.28"), _condition("Z96.651", "24028007"),
                        _condition("Z96.642", "7771000"), _condition("Z96.653", "51440002")],
    "iastm-pain-observation": [PAIN, _observation({"system": LOINC, "code": "72514-3"}, "survey",
                                                  {"value": 0, "system": UCUM, "code": "{score}"}, timing="post")],
    "iastm-rom-observation": [ROM],
    "iastm-prom-observation": [PROM],
    "iastm-patient": [PATIENT],
    "iastm-practitioner": [PRACTITIONER],
    "iastm-organization": [ORGANIZATION],
}


@pytest.mark.parametrize("sd_id,index,key", [
    (sd_id, i, c["key"]) for sd_id, samples in GOOD.items() for i in range(len(samples))
    for _, c in _constraints(SDS[sd_id])
])
def test_invariant_holds_on_good_resource(sd_id, index, key):
    assert _holds(sd_id, key, GOOD[sd_id][index])


def _with(resource, **changes):
    out = copy.deepcopy(resource)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _without_ext(resource, name):
    out = copy.deepcopy(resource)
    out["extension"] = [e for e in out["extension"] if not e["url"].endswith(f"/{name}")]
    return out


_NO_LAT_SITE = {**SITE, "extension": []}
_NO_SEVERITY = copy.deepcopy(PROCEDURE["complication"])
_NO_SEVERITY[0]["extension"] = _NO_SEVERITY[0]["extension"][1:]
_TWO_TECH = copy.deepcopy(PROCEDURE)
_TWO_TECH["extension"].append(copy.deepcopy(PROCEDURE["extension"][0]))
_TWO_ICD = _condition("M77.11", "24028007")
_TWO_ICD["code"]["coding"].append({"system": ICD, "code": "M77.12"})

BAD = [
    ("iastm-procedure", "us-core-7", _with(PROCEDURE, performedPeriod=None)),
    ("iastm-procedure", "iastm-proc-1", _with(PROCEDURE, performedPeriod={
        "start": "2025-05-06T11:00:00-05:00", "end": "2025-05-06T10:35:00-05:00"})),
    ("iastm-procedure", "iastm-proc-1", _with(PROCEDURE, performedPeriod={
        "start": "2025-05-06T11:00:00-05:00", "end": "2025-05-06T11:00:00-05:00"})),
    ("iastm-procedure", "iastm-proc-1", _with(PROCEDURE, performedPeriod={"start": "2025-05-06T11:00:00-05:00"})),
    ("iastm-procedure", "iastm-proc-2", _without_ext(PROCEDURE, "iastm-technique")),
    ("iastm-procedure", "iastm-proc-2", _TWO_TECH),
    ("iastm-procedure", "iastm-proc-3", _with(CANCELLED, statusReason=None)),
    ("iastm-procedure", "iastm-proc-4", _with(PROCEDURE, bodySite=[SITE, _NO_LAT_SITE])),
    ("iastm-procedure", "iastm-proc-5", _with(PROCEDURE, identifier=PROCEDURE["identifier"][1:])),
    ("iastm-procedure", "iastm-proc-5", _with(PROCEDURE, identifier=PROCEDURE["identifier"][:1] * 2)),
    ("iastm-procedure", "iastm-proc-6", _with(PROCEDURE, extension=[
        e if not e["url"].endswith("iastm-session-number") else {**e, "valuePositiveInt": 11}
        for e in PROCEDURE["extension"]])),
    ("iastm-procedure", "iastm-proc-7", _with(PROCEDURE, reasonReference=None)),
    ("iastm-procedure", "iastm-proc-8", _with(PROCEDURE, complication=_NO_SEVERITY)),
    ("iastm-procedure", "iastm-proc-9", _with(PROCEDURE, performedPeriod=None,
                                              performedDateTime="2025-04-02T08:15:00-05:00")),
    ("iastm-procedure", "iastm-proc-10", _with(PROCEDURE, bodySite=[SITE, {**ELBOW, "extension": [
        _lat("7771000"), _loc("255561001"), _loc("264147007")]}])),
    ("iastm-condition", "iastm-cond-4", _condition("M77.02", "7771000") | {"bodySite": [{"extension": [
        _lat("7771000"), _loc("24028007")]}]}),
    ("iastm-rom-observation", "iastm-obs-5", _with(ROM, bodySite={"extension": [_lat("24028007"), _loc("7771000")],
                                                             "coding": [{"system": SCT, "code": "49076000"}]})),
    ("iastm-adjunct-procedure", "iastm-proc-7", _with(ADJUNCT, reasonReference=None)),
    ("iastm-adjunct-procedure", "us-core-7", _with(ADJUNCT, performedPeriod=None)),
    ("iastm-condition", "iastm-cond-1", _TWO_ICD),
    ("iastm-condition", "iastm-cond-1", _condition("M77.11", "24028007") | {
        "code": {"coding": [{"system": SCT, "code": "202855006"}], "text": "x"}}),
    ("iastm-condition", "iastm-cond-2r", _condition("M77.11", "7771000")),
    ("iastm-condition", "iastm-cond-2r", _condition("M76.51")),
    ("iastm-condition", "iastm-cond-2r", _condition("S76.311D", "51440002")),
    ("iastm-condition", "iastm-cond-2r", _condition("Z96.641", "7771000")),
    ("iastm-condition", "iastm-cond-2l", _condition("M77.02", "24028007")),
    ("iastm-condition", "iastm-cond-2l", _condition("S76.312D")),
    ("iastm-condition", "iastm-cond-2l", _condition("Z96.652", "24028007")),
    ("iastm-condition", "iastm-cond-2b", _condition("Z96.653", "24028007")),
    ("iastm-condition", "iastm-cond-2b", _condition("Z96.643")),
    ("iastm-condition", "iastm-cond-2r", _condition("M76.61", "7771000")),
    ("iastm-condition", "iastm-cond-2l", _condition("M79.672", "24028007")),
    ("iastm-condition", "iastm-cond-2b", _condition("M17.0", "24028007")),
    ("iastm-condition", "iastm-cond-2u", _condition("M76.60", "24028007")),
    ("iastm-condition", "iastm-cond-3", _condition("S76.312", "7771000")),
    ("iastm-pain-observation", "iastm-obs-1", _with(PAIN, valueQuantity={"value": 11, "system": UCUM, "code": "{score}"})),
    ("iastm-pain-observation", "iastm-obs-1", _with(PAIN, valueQuantity={"value": 6.5, "system": UCUM, "code": "{score}"})),
    ("iastm-pain-observation", "iastm-obs-1", _with(PAIN, valueQuantity={"value": -1, "system": UCUM, "code": "{score}"})),
    ("iastm-pain-observation", "iastm-obs-1", _with(PAIN, valueQuantity={"value": 5, "system": UCUM, "code": "1"})),
    ("iastm-pain-observation", "iastm-obs-2", _with(PAIN, extension=[])),
    ("iastm-pain-observation", "iastm-obs-2", _with(PAIN, extension=[_ext("iastm-measurement-timing", valueCode="during")])),
    ("iastm-pain-observation", "iastm-obs-4", _with(PAIN, partOf=None)),
    ("iastm-pain-observation", "us-core-2", _with(PAIN, valueQuantity=None)),
    ("iastm-pain-observation", "us-core-3", _with(PAIN, valueQuantity={"value": 5, "system": "urn:x", "code": "{score}"})),
    ("iastm-pain-observation", "us-core-1", _with(PAIN, effectiveDateTime="2025")),
    ("iastm-rom-observation", "iastm-obs-3", _with(ROM, valueQuantity={"value": 90, "system": UCUM, "code": "{score}"})),
    ("iastm-rom-observation", "iastm-obs-4", _with(ROM, partOf=None)),
    ("iastm-prom-observation", "iastm-obs-4", _with(PROM, partOf=None)),
    ("iastm-patient", "us-core-6", _with(PATIENT, name=[{"text": "Grace Okafor"}])),
    ("iastm-practitioner", "us-core-16", _with(PRACTITIONER, identifier=[
        {"system": "http://hl7.org/fhir/sid/us-npi", "value": "12345"}])),
    ("iastm-practitioner", "us-core-17", _with(PRACTITIONER, identifier=[
        {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1987654320"}])),
    ("iastm-organization", "us-core-17", _with(ORGANIZATION, identifier=[
        {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567890"}])),
]


@pytest.mark.parametrize("sd_id,key,resource", BAD, ids=[f"{s}-{k}-{i}" for i, (s, k, _) in enumerate(BAD)])
def test_invariant_fails_on_targeted_bad_resource(sd_id, key, resource):
    assert not _holds(sd_id, key, resource)


def test_every_invariant_has_a_negative_case():
    covered = {(s, k) for s, k, _ in BAD}
    for sd_id in GOOD:
        for _, constraint in _constraints(SDS[sd_id]):
            if constraint["key"] in ("us-core-1", "us-core-2", "us-core-3") and sd_id != "iastm-pain-observation":
                continue  # same verbatim expression, exercised on the pain profile
            if constraint["key"] in ("iastm-proc-1", "iastm-proc-3", "iastm-proc-9") and sd_id == "iastm-adjunct-procedure":
                continue  # same expression as on iastm-procedure
            if (sd_id, constraint["key"]) == ("iastm-organization", "us-core-16"):
                continue  # same verbatim expression as on iastm-practitioner
            assert (sd_id, constraint["key"]) in covered, (sd_id, constraint["key"])


def test_uscore_constraints_are_verbatim_copies():
    luhn = _constraint("iastm-practitioner", "us-core-17")["expression"]
    assert luhn == _constraint("iastm-organization", "us-core-17")["expression"]
    assert luhn.startswith("(((select(value.substring(0,1).toInteger())") and luhn.endswith("+ 24)mod 10=0)")
    assert _constraint("iastm-practitioner", "us-core-16")["expression"] == "value.matches('^[0-9]{10}$')"
    assert _constraint("iastm-patient", "us-core-6")["expression"] == (
        "(family.exists() or given.exists()) xor "
        "extension.where(url='http://hl7.org/fhir/StructureDefinition/data-absent-reason').exists()")
    assert _constraint("iastm-procedure", "us-core-7")["expression"] == (
        "(status='completed' or status='in-progress') implies performed.exists()")


# ---------------------------------------------------------------------------------------------- terminology
#: The one project CodeSystem whose codes are made up at run time (sandbox run tags,
#: docs/targets.md#sandbox-mode): it lists none, so its content is "not-present".
RUN_TAGS = f"{CANON}/CodeSystem/iastm-sandbox-run"


def test_the_sandbox_run_codesystem_lists_no_codes():
    codesystem = CODESYSTEMS[RUN_TAGS]
    assert codesystem["content"] == "not-present"
    assert codesystem["caseSensitive"] is True
    assert "concept" not in codesystem
    assert "count" not in codesystem


@pytest.mark.parametrize("url", sorted(set(CODESYSTEMS) - {RUN_TAGS}))
def test_codesystem_is_complete_and_case_sensitive(url):
    codesystem = CODESYSTEMS[url]
    assert codesystem["content"] == "complete" and codesystem["caseSensitive"] is True
    codes = list(_cs_codes(codesystem["concept"]))
    assert len(codes) == len(set(codes)) == codesystem["count"]
    # clinical codes are kebab-case; the error-code system carries the stable E_/W_ codes
    pattern = r"[EW]_[A-Z_]+" if url.endswith("/iastm-error-code") else r"[a-z0-9][a-z0-9-]*"
    assert all(re.fullmatch(pattern, code) for code in codes)


def test_technique_hierarchy_and_valueset():
    technique = CODESYSTEMS[f"{CANON}/CodeSystem/iastm-technique"]
    assert technique["hierarchyMeaning"] == "is-a"
    [root] = technique["concept"]
    assert root["code"] == "iastm"
    brands = {c["code"] for c in root["concept"]}
    assert brands == {"graston", "astym", "sastm", "gua-sha", "hawkgrips", "tecnica-gavilan", "iastm-other"}
    valueset = VALUESETS[f"{CANON}/ValueSet/iastm-technique"]
    included = {c["code"] for inc in valueset["compose"]["include"] for c in inc["concept"]}
    assert included == brands and "iastm" not in included


@pytest.mark.parametrize("url,codes", [
    (f"{CANON}/CodeSystem/iastm-instrument", {"steel-single-bevel", "steel-double-bevel", "steel-multi-curve",
                                               "ceramic-tool", "jade-or-stone-tool", "horn-tool", "polymer-tool",
                                               "other"}),
    (f"{CANON}/CodeSystem/iastm-body-site", {"elbow-lateral", "elbow-medial", "plantar-fascia", "patellar-tendon",
                                              "knee", "hamstring", "thigh", "hip"}),
    (f"{CANON}/CodeSystem/iastm-adjunct", {"stretching", "strengthening"}),
    (f"{CANON}/CodeSystem/iastm-measurement-timing", {"pre", "post"}),
    (f"{CANON}/CodeSystem/iastm-rom-method", {"goniometer", "inclinometer", "visual-estimate"}),
    (f"{CANON}/CodeSystem/iastm-rom-mode", {"active", "passive"}),
])
def test_codesystem_codes_match_mapping(url, codes):
    assert set(_cs_codes(CODESYSTEMS[url]["concept"])) == codes


def test_observation_codesystem_matches_mapping():
    codes = set(_cs_codes(CODESYSTEMS[f"{CANON}/CodeSystem/iastm-observation"]["concept"]))
    rom = {f"rom-{x}" for x in ["knee-flexion", "knee-extension", "elbow-flexion", "elbow-extension",
                                "elbow-pronation", "elbow-supination", "hip-flexion", "hip-extension",
                                "hip-abduction", "hip-adduction", "hip-internal-rotation", "hip-external-rotation",
                                "ankle-dorsiflexion", "ankle-plantarflexion", "wrist-flexion", "wrist-extension"]}
    assert codes == rom | {"lefs-total", "quickdash-score", "psfs-average", "psfs-item",
                           "prtee-total", "faam-adl", "faam-sports", "visa-p-total"}


def _used_codings():
    """(system, code) of every coding / concept that profiles/ puts in patterns, value sets and maps."""
    for resource in ALL.values():
        if resource["resourceType"] == "ValueSet":
            for part in ("include", "exclude"):
                for item in resource.get("compose", {}).get(part, []):
                    for concept in item.get("concept", []):
                        yield item["system"], concept["code"]
                    for flt in item.get("filter", []):
                        yield item["system"], flt["value"]
        elif resource["resourceType"] == "ConceptMap":
            for group in resource["group"]:
                for element in group["element"]:
                    yield group["source"], element["code"]
                    for target in element.get("target", []):
                        yield group["target"], target["code"]
                        for product in target.get("product", []):
                            yield product["system"], product["value"]
        elif resource["resourceType"] == "StructureDefinition":
            for path, key, value in _walk(resource["differential"]):
                if key in ("patternCoding", "fixedCoding") and "code" in value:
                    yield value["system"], value["code"]
                if key in ("patternCodeableConcept", "fixedCodeableConcept"):
                    for coding in value.get("coding", []):
                        yield coding["system"], coding["code"]
                if key in ("patternQuantity", "patternDuration"):
                    yield value["system"], value["code"]


def test_every_code_used_is_verified_or_local():
    local = {url: set(_cs_codes(cs.get("concept", []))) for url, cs in CODESYSTEMS.items()}
    allowed = {SCT: VERIFIED_SNOMED | MCODE_PUBLISHED_SNOMED, LOINC: VERIFIED_LOINC, UCUM: {"{score}", "deg", "min"}}
    for system, code in _used_codings():
        if system in local:
            assert code in local[system], (system, code)
        elif system in allowed:
            assert code in allowed[system], (system, code)
        else:
            assert system.startswith(("http://terminology.hl7.org/CodeSystem/", "http://hl7.org/fhir/us/core/CodeSystem/")), system


def test_mcode_published_codes_only_in_mcode_copies():
    for resource in ALL.values():
        if resource["url"] in MCODE_COPIES:
            continue
        text = json.dumps(resource)
        for code in MCODE_PUBLISHED_SNOMED:
            assert f'"{code}"' not in text, (resource["id"], code)


def test_conceptmap_covers_every_body_site():
    conceptmap = BY_URL[f"{CANON}/ConceptMap/iastm-body-site-to-snomed"]
    sites = set(_cs_codes(CODESYSTEMS[f"{CANON}/CodeSystem/iastm-body-site"]["concept"]))
    [group] = conceptmap["group"]
    assert group["source"] == f"{CANON}/CodeSystem/iastm-body-site" and group["target"] == SCT
    assert {e["code"] for e in group["element"]} == sites
    targets = {e["code"]: e["target"][0]["code"] for e in group["element"]}
    assert targets == {"elbow-lateral": "127949000", "elbow-medial": "127949000", "plantar-fascia": "56459004",
                       "patellar-tendon": "18033002", "knee": "72696002", "hamstring": "68367000",
                       "thigh": "68367000", "hip": "29836001"}
    qualifiers = {e["code"]: [p["value"] for p in e["target"][0].get("product", [])] for e in group["element"]}
    assert qualifiers["elbow-lateral"] == ["49370004"] and qualifiers["elbow-medial"] == ["255561001"]
    assert qualifiers["hamstring"] == ["255551008"] and qualifiers["knee"] == []
