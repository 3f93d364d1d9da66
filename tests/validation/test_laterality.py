"""The Condition laterality invariants are generated from the ICD-10-CM table: the profile holds
exactly the generated text, and its FHIRPath agrees with the native twin on codes of every side."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from fhir_iastm.profiles.compile import compile_constraint
from fhir_iastm.records.icd10cm import codes_with_side
from fhir_iastm.validation.invariants import evaluate_fhirpath
from fhir_iastm.validation.laterality import (
    LAT,
    LATERALITY_INVARIANTS,
    code_regex,
    invariant_expression,
    native_check,
)

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "profiles/StructureDefinition-iastm-condition.json"
SIDES = ("right", "left", "bilateral", "unspecified")
SNOMED = {"right": "24028007", "left": "7771000", "bilateral": "51440002"}


def test_profile_holds_the_generated_expressions() -> None:
    root = json.loads(PROFILE.read_text())["differential"]["element"][0]
    found = {c["key"]: c["expression"] for c in root["constraint"]}
    for key in LATERALITY_INVARIANTS:
        assert found[key] == invariant_expression(key), f"{key}: run scripts/derive_icd10cm.py"


@pytest.mark.parametrize("side", SIDES)
def test_code_regex_matches_exactly_the_sides_codes(side: str) -> None:
    codes = codes_with_side(side)
    regex = re.compile(f"^(?:{code_regex(codes)})$")
    assert all(regex.match(c) for c in codes)
    others = [c for s in SIDES if s != side for c in codes_with_side(s)]
    assert not any(regex.match(c) for c in others)
    assert "\\" not in regex.pattern  # no escapes to double in a FHIRPath string


def _condition(code: str, laterality: str | None) -> dict:
    site = {"text": "x"}
    if laterality:
        site["extension"] = [
            {
                "url": LAT,
                "valueCodeableConcept": {
                    "coding": [{"system": "http://snomed.info/sct", "code": SNOMED[laterality]}]
                },
            }
        ]
    return {
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]},
        "bodySite": [site],
    }


@pytest.mark.parametrize("key", list(LATERALITY_INVARIANTS))
def test_fhirpath_and_native_twin_agree(key: str) -> None:
    constraint = compile_constraint({"key": key, "expression": invariant_expression(key)}, "t")
    twin = native_check(key)
    rng = random.Random(key)
    codes = ["M72.2", "G89.28"] + [c for s in SIDES for c in rng.sample(codes_with_side(s), 15)]
    verdicts = set()
    for code in codes:
        for laterality in (None, "right", "left", "bilateral"):
            resource = _condition(code, laterality)
            expected = evaluate_fhirpath(constraint, resource, resource)
            assert twin(resource, "Condition") is expected, (key, code, laterality)
            verdicts.add(expected)
    assert verdicts == {True, False}
