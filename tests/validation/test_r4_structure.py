"""Structural validation by the R4 4.0.1 definitions (fhir_iastm/validation/r4check.py): each
kind of defect is reported at its FHIRPath with its rule id, and nothing else is."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.validation import validate

ROOT = Path(__file__).resolve().parents[2]
DIV = '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'
BASE: dict[str, Any] = {
    "resourceType": "Procedure",
    "text": {"status": "generated", "div": DIV},
    "status": "completed",
    "subject": {"reference": "Patient/1"},
    "performedPeriod": {"start": "2025-04-02T08:15:00-05:00", "end": "2025-04-02T08:45:00-05:00"},
    "bodySite": [{"coding": [{"system": "http://snomed.info/sct", "code": "368208006"}]}],
}


@pytest.fixture(scope="module")
def index() -> ProfileIndex:
    return load_profiles(ROOT / "profiles")


def found(resource: dict[str, Any], index: ProfileIndex) -> set[tuple[str | None, str | None]]:
    return {
        (i.expression, i.details)
        for i in validate(resource, index)
        if i.is_error or i.severity == "warning"
    }


def test_the_base_resource_is_clean(index: ProfileIndex) -> None:
    assert found(BASE, index) == set()


CASES: list[tuple[str, dict[str, Any], set[tuple[str, str]]]] = [
    ("unknown element", {"bogus": 1}, {("Procedure.bogus", "structure:unknown")}),
    (
        "a single value for a repeating element",
        {"reasonReference": [{"reference": "Condition/1"}], "usedCode": {"text": "x"}},
        {("Procedure.usedCode", "structure:array")},
    ),
    ("missing required", {"status": None}, {("Procedure.status", "structure:empty")}),
    ("array for a single", {"status": ["completed"]}, {("Procedure.status", "structure:array")}),
    (
        "single for an array",
        {"bodySite": {"text": "x"}},
        {("Procedure.bodySite", "structure:array")},
    ),
    ("empty array", {"note": []}, {("Procedure.note", "structure:empty")}),
    ("empty object", {"code": {}}, {("Procedure.code", "structure:empty")}),
    ("wrong JSON type", {"status": 3}, {("Procedure.status", "structure:type")}),
    (
        "primitive regex: dateTime",
        {"performedPeriod": {"start": "2025-13-02", "end": "2025-04-02"}},
        {("Procedure.performedPeriod.start", "structure:format")},
    ),
    (
        "a day that does not exist",
        {"performedPeriod": {"start": "2024-02-29T08:00:00Z", "end": "2025-02-29T08:00:00Z"}},
        {("Procedure.performedPeriod.end", "structure:format")},
    ),
    (
        "two types of one choice",
        {"performedDateTime": "2025-04-02"},
        {("Procedure.performedDateTime", "structure:choice")},
    ),
    (
        "choice type not allowed",
        {"performedPeriod": None, "performedBoolean": True},
        {("Procedure.performedBoolean", "structure:unknown")},
    ),
    (
        "required binding of a code",
        {"status": "done"},
        {("Procedure.status", "binding:Procedure.status")},
    ),
    (
        "required binding inside a data type",
        {"identifier": [{"use": "primary", "value": "x"}]},
        {("Procedure.identifier[0].use", "binding:Procedure.identifier.use")},
    ),
    (
        "core invariant of a data type (per-1)",
        {"performedPeriod": {"start": "2025-04-02T09:00:00Z", "end": "2025-04-02T08:00:00Z"}},
        {("Procedure.performedPeriod", "per-1")},
    ),
    (
        "core invariant of the resource (dom-2)",
        {
            "contained": [
                {
                    "resourceType": "Device",
                    "id": "d",
                    "contained": [{"resourceType": "Device", "id": "e"}],
                }
            ],
            "usedReference": [{"reference": "#d"}],
        },
        {("Procedure", "dom-2")},
    ),
    (
        "contained resources are walked by their own type",
        {
            "contained": [{"resourceType": "Device", "id": "d", "status": "on"}],
            "usedReference": [{"reference": "#d"}],
        },
        {("Procedure.contained[0].status", "binding:Device.status")},
    ),
    (
        "a contained resource that no one references (dom-3)",
        {"contained": [{"resourceType": "Device", "id": "d", "status": "active"}]},
        {("Procedure", "dom-3")},
    ),
    (
        "unknown contained resource type",
        {
            "contained": [{"resourceType": "SubscriptionTopic", "id": "t"}],
            "usedReference": [{"reference": "#t"}],
        },
        {("Procedure.contained[0]", "structure:resourceType")},
    ),
    (
        "narrative must be xhtml (txt-1, txt-2)",
        {"text": {"status": "generated", "div": "<p>x</p>"}},
        {("Procedure.text.div", "txt-1"), ("Procedure.text.div", "txt-2")},
    ),
    (
        "primitive extension of a non-primitive",
        {"_code": {"id": "x"}},
        {("Procedure._code", "structure:unknown")},
    ),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_defect_is_reported_where_it_is(
    change: dict[str, Any], expected: set[tuple[str, str]], index: ProfileIndex
) -> None:
    resource = copy.deepcopy(BASE)
    for key, value in change.items():
        if value is None and key in resource and key != "status":
            del resource[key]
        else:
            resource[key] = value
    assert found(resource, index) == expected


def test_missing_required_element_is_a_cardinality_error(index: ProfileIndex) -> None:
    resource = {k: v for k, v in BASE.items() if k != "status"}
    assert found(resource, index) == {("Procedure", "card:Procedure.status")}


def test_primitive_extensions_stand_in_for_a_missing_value(index: ProfileIndex) -> None:
    ext = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    }
    resource = {k: v for k, v in BASE.items() if k != "status"}
    resource["_status"] = ext
    assert found(resource, index) == set()


def test_resource_type_is_judged_by_the_r4_list(index: ProfileIndex) -> None:
    assert found({"resourceType": "SubscriptionTopic", "status": "draft", "url": "x"}, index) == {
        ("SubscriptionTopic", "structure:resourceType")
    }
    assert found({"resourceType": "Resource"}, index) == {("Resource", "structure:resourceType")}


def test_bundle_is_walked_by_core_bundle_and_entries_one_by_one(index: ProfileIndex) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "total": 1,
        "entry": [
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
                "resource": dict(BASE, bogus=1),
            },
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002"},
            {"bogus": 2},
        ],
    }
    assert found(bundle, index) == {
        ("Bundle", "bdl-1"),
        ("Bundle.entry[0].resource.bogus", "structure:unknown"),
        ("Bundle.entry[2].bogus", "structure:unknown"),
        ("Bundle.entry[1]", "bdl-5"),
    }
