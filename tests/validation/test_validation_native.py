"""The native twins of hot invariants (fhir_iastm/validation/native.py) agree with their FHIRPath
text, evaluated by fhirpathpy on the UTC-normalised copy, on every context the validator meets:
the good examples' Bundles, the whole mutation corpus and hypothesis-generated records."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from fhir_iastm.mapping import to_fhir
from fhir_iastm.profiles import Constraint, ProfileIndex, load_profiles
from fhir_iastm.records import load_record
from fhir_iastm.validation import invariants, validate
from fhir_iastm.validation.invariants import evaluate_fhirpath, native_for, normalise
from fhir_iastm.validation.r4inv import R4_NATIVE, SHORTCUT_ONLY
from tests.strategies import valid_records

ROOT = Path(__file__).resolve().parents[2]
_INDEX: list[ProfileIndex] = []
Verdicts = dict[str, set[bool]]


def _index() -> ProfileIndex:
    if not _INDEX:
        _INDEX.append(load_profiles(ROOT / "profiles"))
    return _INDEX[0]


def _documents() -> Iterator[dict[str, Any]]:
    for path in sorted((ROOT / "tests/data/examples").glob("good-*.json")):
        yield to_fhir(load_record(json.loads(path.read_text())))
    for path in sorted((ROOT / "tests/data/mutations").glob("[0-9]*.json")):
        yield json.loads(path.read_text())["resource"]


def _compare_all(monkeypatch: pytest.MonkeyPatch, documents: list[dict[str, Any]]) -> Verdicts:
    """Validate with an ``evaluate`` that runs both and records (key -> verdicts seen)."""
    seen: Verdicts = defaultdict(set)
    mismatches: list[str] = []

    def both(
        constraint: Constraint, data: Any, root: dict[str, Any], type_name: str | None = None
    ) -> bool:
        try:
            expected: bool | str = evaluate_fhirpath(constraint, data, root, type_name)
        except Exception:  # noqa: BLE001 - fhirpathpy raises bare Exception
            expected = "raises"
        twin = native_for(constraint.expression)
        if twin is not None:
            verdict = twin(data, type_name or str(data.get("resourceType", "")))
            if verdict is not None:
                seen[constraint.key].add(verdict)
                if verdict != expected:
                    mismatches.append(
                        f"{constraint.key}: native {verdict} fhirpath {expected} "
                        f"on {json.dumps(data)[:300]}"
                    )
        if expected == "raises":
            raise ValueError("fhirpath raised")
        return bool(expected)

    monkeypatch.setattr(invariants, "evaluate", both)
    monkeypatch.setattr(invariants, "FAST", False)  # every invariant through ``evaluate``
    for document in documents:
        validate(document, _index())
    assert mismatches == []
    return seen


C = "https://iastm.example.org/fhir/StructureDefinition/"
PAIN = {
    "resourceType": "Observation",
    "meta": {"profile": [C + "iastm-pain-observation"]},
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
}
#: odd shapes the examples never produce (statuses absent, empty results, edge values)
EDGE_CASES: list[dict[str, Any]] = [
    {
        "resourceType": "Procedure",
        "meta": {"profile": [C + "iastm-procedure"]},
        "subject": {"reference": "Patient/1"},
        "complication": [{"text": "x"}],
        "bodySite": [{"text": "x"}],
        "performedPeriod": {"start": "2025-04-02"},
    },
    {
        "resourceType": "Procedure",
        "meta": {"profile": [C + "iastm-procedure"]},
        "status": "in-progress",
        "subject": {"reference": "Patient/1"},
        "performedDateTime": "2025-04-02",
    },
    {
        **PAIN,
        "valueQuantity": {"value": 10.0, "code": "{score}"},
        "dataAbsentReason": {"text": "x"},
    },
    {
        **PAIN,
        "valueQuantity": {"value": -1, "code": "{score}"},
        "extension": [
            {"url": C + "iastm-measurement-timing", "valueCode": "pre"},
            {"url": C + "iastm-measurement-timing", "valueCode": "post"},
        ],
    },
    {**PAIN, "valueQuantity": {"code": "{score}"}, "effectiveDateTime": "2025-04"},
    {**PAIN, "component": [{"code": {"text": "x"}}]},
    {
        "resourceType": "Practitioner",
        "meta": {"profile": [C + "iastm-practitioner"]},
        "identifier": [
            {"system": "http://hl7.org/fhir/sid/us-npi", "value": "123456789"},
            {"system": "http://hl7.org/fhir/sid/us-npi", "value": "12345678930"},
            {"system": "http://hl7.org/fhir/sid/us-npi", "value": "12345X7893"},
            {"system": "http://hl7.org/fhir/sid/us-npi"},
        ],
        "name": [
            {
                "family": "X",
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                        "valueCode": "x",
                    }
                ],
            }
        ],
    },
    {
        "resourceType": "Condition",
        "meta": {"profile": [C + "iastm-condition"]},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "S76.311D\n"},
                {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z96.653"},
            ]
        },
        "subject": {"reference": "Patient/1"},
    },
    # core R4 twins (r4inv.R4_NATIVE): each made to say "no" once
    {
        "resourceType": "Patient",
        "contained": [
            {
                "resourceType": "Organization",
                "id": "o1",
                "meta": {"versionId": "1", "security": [{"code": "x"}]},
                "contained": [{"resourceType": "Organization", "id": "o2", "name": "y"}],
                "name": "x",
            }
        ],
        "managingOrganization": {"reference": "#o1"},
        "telecom": [{"value": "555"}],
        "photo": [{"data": "AAAA"}],
        "text": {"status": "generated", "div": "<p>no namespace</p>"},
        "extension": [{"url": "http://example.org/x"}],
        "address": [{"period": {"start": "2025-04-02T08:15:00Z", "end": "2025-04-01T08:15:00Z"}}],
        "contact": [{"telecom": [{"value": "1", "system": "phone", "extension": []}]}],
    },
    {
        "resourceType": "Basic",
        "code": {"text": "x"},
        "text": {"status": "empty", "div": "<div/>"},
        "contained": [{"resourceType": "Basic", "id": "b", "code": {"text": "y"}}],
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueQuantity": {"value": 1, "code": "mm"},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "valueString": "x",
        "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}}],
    },
    {
        "resourceType": "Organization",
        "active": True,
        "address": [{"use": "home", "city": "x"}],
        "telecom": [{"use": "home", "value": "1", "system": "phone"}],
    },
    {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": {"reference": "Patient/1"},
        "extension": [
            {"url": "http://example.org/d", "valueDuration": {"value": 5, "code": "min"}},
        ],
    },
    # Bundle twins (bdl-1, 2, 4, 5, 8, 9, 10, 11, 12)
    {
        "resourceType": "Bundle",
        "type": "collection",
        "total": 1,
        "entry": [
            {"fullUrl": "http://x.org/Patient/1/_history/1", "search": {"mode": "match"}},
            {"fullUrl": "urn:uuid:1", "response": {"status": "200"}},
        ],
    },
    {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [{"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Patient"}}],
    },
    {
        "resourceType": "Bundle",
        "type": "message",
        "entry": [{"fullUrl": "urn:uuid:3", "resource": {"resourceType": "Patient"}}],
    },
]


def test_native_twins_agree_on_examples_and_mutation_corpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _compare_all(monkeypatch, [*_documents(), *EDGE_CASES])
    # every twin was exercised, and the corpus makes each resource-level twin say "no" at least once
    profile_keys = {c.key for p in _index().profiles.values() for c in _constraints(p.root)}
    assert profile_keys <= set(seen)
    never_false = {k for k, v in seen.items() if False not in v}
    assert never_false == set(SHORTCUT_ONLY)
    assert set(R4_NATIVE) <= set(seen)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(record=valid_records())
def test_native_twins_agree_on_generated_bundles(
    monkeypatch: pytest.MonkeyPatch, record: dict[str, Any]
) -> None:
    _compare_all(monkeypatch, [to_fhir(load_record(record))])


def _constraints(node: Any) -> Iterator[Constraint]:
    yield from node.constraints
    for child in (*node.children.values(), *node.slices.values()):
        yield from _constraints(child)


def test_every_profile_invariant_has_a_native_twin() -> None:
    """A profile whose expression text drifted from native_texts.py loses its fast path: fail."""
    missing = sorted(
        {
            c.key
            for p in _index().profiles.values()
            for c in _constraints(p.root)
            if native_for(c.expression) is None
        }
    )
    assert missing == []
    assert native_for(" " + normalise("partOf.exists()") + " ") is not None
