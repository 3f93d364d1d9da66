"""R4 rules beyond the regexes (fhir_iastm/validation/r4rules.py, docs/validation.md#core-codes,
docs/validation.md#uris): codes of the complete core code systems, lower-case ``urn:uuid``,
absolute canonicals — each reported at its FHIRPath with its rule id, and nothing else."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.validation import r4defs, validate
from fhir_iastm.validation.r4rules import QUICK, URI_CHECKS, code_sets, known_code

ROOT = Path(__file__).resolve().parents[2]
CORE = "http://hl7.org/fhir/StructureDefinition/"
DIV = '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'
FORM = "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"
V2_ID = "http://terminology.hl7.org/CodeSystem/v2-0203"
UUID = "68d043b5-9ecf-4a2a-b8f4-7c0c1a2b3d4e"
BASE: dict[str, Any] = {
    "resourceType": "Observation",
    "text": {"status": "generated", "div": DIV},
    "status": "final",
    "code": {"text": "x"},
}


@pytest.fixture(scope="module")
def index() -> ProfileIndex:
    return load_profiles(ROOT / "profiles")


def errors(resource: dict[str, Any], index: ProfileIndex) -> set[tuple[str | None, str | None]]:
    profile = CORE + resource["resourceType"]
    return {
        (i.expression, i.details) for i in validate(resource, index, profile=profile) if i.is_error
    }


def coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


CASES: list[tuple[str, dict[str, Any], set[tuple[str, str]]]] = [
    ("a code of a complete v3 system", {"code": coding(FORM, "TAB")}, set()),
    (
        "a code not in it",
        {"code": coding(FORM, "Vial")},
        {("Observation.code.coding[0].code", f"codesystem:{FORM}")},
    ),
    (
        "case-sensitive (caseSensitive = true)",
        {"code": coding(FORM, "tab")},
        {("Observation.code.coding[0].code", f"codesystem:{FORM}")},
    ),
    ("any case where the CodeSystem does not say (v2)", {"code": coding(V2_ID, "mr")}, set()),
    (
        "a v2 code not in its table",
        {"code": coding(V2_ID, "XX9")},
        {("Observation.code.coding[0].code", f"codesystem:{V2_ID}")},
    ),
    ("a system the package does not define", {"code": coding("http://e.org/cs", "x")}, set()),
    ("a system without a code", {"code": {"coding": [{"system": FORM}]}}, set()),
    (
        "a Quantity's code",
        {"valueQuantity": {"value": 1, "system": FORM, "code": "Vial"}},
        {("Observation.valueQuantity.code", f"codesystem:{FORM}")},
    ),
    (
        "a Quantity in UCUM (not in the package)",
        {"valueQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "mg"}},
        set(),
    ),
    (
        "a Coding in an extension",
        {"extension": [{"url": "http://e.org/x", "valueCoding": {"system": FORM, "code": "X"}}]},
        {("Observation.extension[0].valueCoding.code", f"codesystem:{FORM}")},
    ),
    ("a lower-case urn:uuid", {"implicitRules": f"urn:uuid:{UUID}"}, set()),
    (
        "an upper-case urn:uuid in a uri",
        {"implicitRules": f"urn:uuid:{UUID.upper()}"},
        {("Observation.implicitRules", "uri:uuid")},
    ),
    (
        "a urn:uuid that is not a UUID",
        {"implicitRules": "urn:uuid:not-a-uuid"},
        {("Observation.implicitRules", "uri:uuid")},
    ),
    ("a relative uri (allowed)", {"implicitRules": "rules/1"}, set()),
    (
        "a relative canonical",
        {"meta": {"profile": ["StructureDefinition/x"]}},
        {("Observation.meta.profile[0]", "uri:canonical")},
    ),
    (
        "an upper-case urn:uuid canonical",
        {"meta": {"profile": [f"urn:uuid:{UUID.upper()}"]}},
        {("Observation.meta.profile[0]", "uri:uuid")},
    ),
]


@pytest.mark.parametrize(("name", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_is_reported_where_it_fails(
    name: str, change: dict[str, Any], expected: set[tuple[str, str]], index: ProfileIndex
) -> None:
    resource = copy.deepcopy(BASE) | change
    found = {
        (p, r) for p, r in errors(resource, index) if r and r.startswith(("codesystem:", "uri:"))
    }
    assert found == expected, name
    if not expected:
        assert errors(resource, index) == set(), name


def test_a_code_in_a_contained_resource_and_a_simple_quantity(index: ProfileIndex) -> None:
    dispense = {
        "resourceType": "MedicationDispense",
        "text": {"status": "generated", "div": DIV},
        "status": "completed",
        "medicationReference": {"reference": "#med"},
        "contained": [{"resourceType": "Medication", "id": "med", "form": coding(FORM, "Tab")}],
        "quantity": {"value": 1, "system": FORM, "code": "Vial"},
    }
    assert errors(dispense, index) == {
        ("MedicationDispense.contained[0].form.coding[0].code", f"codesystem:{FORM}"),
        ("MedicationDispense.quantity.code", f"codesystem:{FORM}"),
    }


@pytest.mark.parametrize(
    "value",
    [
        f"urn:uuid:{UUID}",
        f"urn:uuid:{UUID}|1.0",
        "#x",
        "#",
        "http://e.org/a|2",
        "cid:abc",
        "Http://e.org/a",
        "StructureDefinition/x",
        f"urn:uuid:{UUID.upper()}",
        "http:",
        "",
    ],
)
@pytest.mark.parametrize("code", ["uri", "url", "canonical"])
def test_the_quick_pass_never_accepts_what_the_full_check_rejects(code: str, value: str) -> None:
    reported: list[str] = []
    URI_CHECKS[code](value, "x", lambda *issue: reported.append(issue[3]))
    if QUICK[code](value):
        assert reported == []
    spec = r4defs.primitive_pattern(code)
    assert spec is not None
    assert not QUICK[code](value) or spec.fullmatch(value)  # never looser than the spec's regex


def test_the_code_table_is_the_packages_complete_code_systems() -> None:
    systems = code_sets()
    assert len(systems) == 1054  # 630 in valuesets.xml / v3-codesystems.xml, 424 v2 tables
    assert known_code(FORM, "TAB") is True
    assert known_code(FORM, "Tab") is False
    assert known_code(V2_ID, "mr") is True  # v2 tables do not state caseSensitive
    assert known_code("http://hl7.org/fhir/administrative-gender", "male") is True
    assert known_code("http://unitsofmeasure.org", "mg") is None
