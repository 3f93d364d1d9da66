"""The two core R4 invariants fhirpathpy cannot evaluate (fhir_iastm/validation/fhirpath_gaps.py):
rng-2 orders two Quantities, ctm-1 calls ``resolve()``. Before they were evaluated natively
every Range with both bounds and every CareTeam participant failed with "invariant could not be
evaluated" (false errors on four official R4 examples). Each verdict here was checked against
HAPI ``$validate`` (base R4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.profiles import load_profiles
from fhir_iastm.validation import validate

ROOT = Path(__file__).resolve().parents[2]
CORE = "http://hl7.org/fhir/StructureDefinition/"
UCUM = "http://unitsofmeasure.org"
INDEX = load_profiles(ROOT / "profiles")


def errors(resource: dict[str, Any]) -> list[tuple[str | None, str | None, str | None]]:
    issues = validate(resource, INDEX, profile=CORE + resource["resourceType"])
    return [(i.details, i.expression, i.diagnostics) for i in issues if i.is_error]


def goal(detail_range: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "description": {"text": "weight"},
        "subject": {"reference": "Patient/x"},
        "target": [{"measure": {"text": "weight"}, "detailRange": detail_range}],
    }


def q(value: float | None, code: str = "[lb_av]", system: str | None = UCUM) -> dict[str, Any]:
    out: dict[str, Any] = {"unit": code, "code": code}
    if system is not None:
        out["system"] = system
    if value is not None:
        out["value"] = value
    return out


@pytest.mark.parametrize(
    ("low", "high"),
    [
        (q(160), q(180)),
        (q(160), q(160)),
        (
            q(1, "TAB", "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"),
            q(2, "TAB", "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"),
        ),
        (q(0.5), None),
        (None, q(3)),
    ],
)
def test_rng_2_holds_for_ordered_or_open_ranges(
    low: dict[str, Any] | None, high: dict[str, Any] | None
) -> None:
    detail = {k: v for k, v in (("low", low), ("high", high)) if v is not None}
    assert errors(goal(detail)) == []


@pytest.mark.parametrize(
    ("low", "high"),
    [
        (q(180), q(160)),
        ({"value": 2.5, "unit": "x"}, {"value": 2, "unit": "x"}),
        ({"unit": "mg"}, q(10)),  # a bound without a value cannot be ordered: HAPI fails it too
    ],
)
def test_rng_2_fails_for_reversed_ranges(low: dict[str, Any], high: dict[str, Any]) -> None:
    found = errors(goal({"low": low, "high": high}))
    assert [(d, e) for d, e, _t in found] == [("rng-2", "Goal.target[0].detailRange")]
    assert "low SHALL have a lower value than high" in str(found[0][2])


def test_rng_2_in_different_units_is_reported_as_not_comparable() -> None:
    found = errors(goal({"low": q(5, "mg"), "high": q(1, "g")}))
    assert [d for d, _e, _t in found] == ["rng-2"]
    assert "different units (mg, g)" in str(found[0][2])


def careteam(member: dict[str, Any], contained_type: str = "Practitioner") -> dict[str, Any]:
    local = str(member.get("reference", "")).startswith("#")
    return {
        "resourceType": "CareTeam",
        **({"contained": [{"resourceType": contained_type, "id": "m1"}]} if local else {}),
        "subject": {"reference": "Patient/x"},
        "participant": [
            {"member": {"reference": "Patient/x"}},
            {"member": member, "onBehalfOf": {"reference": "Organization/o"}},
        ],
    }


@pytest.mark.parametrize(
    "member",
    [
        {"reference": "#m1"},  # resolves to the contained Practitioner
        {"reference": "Patient/x"},  # resolve() finds nothing offline: iif(empty(), true, …)
        {"display": "someone"},
    ],
)
def test_ctm_1_holds(member: dict[str, Any]) -> None:
    assert errors(careteam(member)) == []


def test_ctm_1_fails_when_the_member_resolves_to_another_type() -> None:
    found = errors(careteam({"reference": "#m1"}, "Patient"))
    assert [(d, e) for d, e, _t in found] == [("ctm-1", "CareTeam.participant[1]")]
