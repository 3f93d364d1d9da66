"""Engine unit tests on small hand-written profiles (tests/data/validator/profiles): every check
kind passes on a conforming resource and fails, with its rule id and FHIRPath, when broken."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.errors import RECORD_FIELD_EXTENSION, Issue, operation_outcome
from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.validation import validate

DATA = Path(__file__).resolve().parents[1] / "data" / "validator"
B = "https://test.example.org/fhir"
SCT = "http://snomed.info/sct"
COLOR = f"{B}/StructureDefinition/ext-color"
PROFILE = f"{B}/StructureDefinition/test-procedure"

NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">ok</div>'}
GOOD: dict[str, Any] = {
    "resourceType": "Procedure",
    "meta": {"profile": [PROFILE]},
    "text": NARRATIVE,
    "extension": [
        {
            "url": COLOR,
            "valueCodeableConcept": {
                "coding": [{"system": f"{B}/CodeSystem/color", "code": "dark-red"}]
            },
        }
    ],
    "identifier": [{"system": f"{B}/sid/a", "value": "A-1"}],
    "status": "completed",
    "statusReason": {"text": "n/a"},
    "category": {
        "coding": [{"system": SCT, "code": "387713003", "display": "Surgical"}],
        "text": "surgery",
    },
    "code": {"coding": [{"system": f"{B}/CodeSystem/color", "code": "blue"}]},
    "subject": {"reference": "Patient/p1"},
    "performedPeriod": {"start": "2025-04-02T08:15:00-05:00", "end": "2025-04-02T08:45:00-05:00"},
    "note": [{"text": "ok"}],
    "followUp": [{"coding": [{"system": SCT, "code": "24484000"}]}],
}


@pytest.fixture(scope="module")
def index() -> ProfileIndex:
    return load_profiles(DATA / "profiles")


def errors(issues: list[Issue]) -> set[tuple[str | None, str | None]]:
    return {(i.expression, i.details) for i in issues if i.is_error}


def mutated(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    res = copy.deepcopy(GOOD)
    change(res)
    return res


def test_conforming_resource_has_no_errors_or_warnings(index: ProfileIndex) -> None:
    issues = validate(GOOD, index)
    assert [i for i in issues if i.severity in ("error", "fatal", "warning")] == [
        i for i in issues if i.details == "t-boom"
    ]


def test_exception_in_invariant_is_an_error_issue_not_a_crash(index: ProfileIndex) -> None:
    boom = [i for i in validate(GOOD, index) if i.details == "t-boom"]
    assert len(boom) == 1
    assert boom[0].severity == "error"
    assert "invariant could not be evaluated" in (boom[0].diagnostics or "")


CASES: list[tuple[str, Callable[[dict[str, Any]], Any], tuple[str, str]]] = [
    (
        "min of an extension slice (by URL)",
        lambda r: r.pop("extension"),
        ("Procedure", "slice:Procedure.extension:color"),
    ),
    (
        "max of an extension slice",
        lambda r: r["extension"].append(copy.deepcopy(r["extension"][0])),
        ("Procedure", "slice:Procedure.extension:color"),
    ),
    ("min of an element", lambda r: r.pop("code"), ("Procedure", "card:Procedure.code")),
    (
        "max of an element",
        lambda r: r["followUp"].append(copy.deepcopy(r["followUp"][0])),
        ("Procedure", "card:Procedure.followUp"),
    ),
    (
        "fixed[x]",
        lambda r: r.update(status="in-progress"),
        ("Procedure.status", "fixed:Procedure.status"),
    ),
    (
        "pattern[x]",
        lambda r: r["category"]["coding"][0].update(code="1"),
        ("Procedure.category", "pattern:Procedure.category"),
    ),
    (
        "closed slicing: value discriminator matches no slice",
        lambda r: r["identifier"].append({"system": f"{B}/sid/other", "value": "x"}),
        ("Procedure.identifier[1]", "slicing:Procedure.identifier"),
    ),
    (
        "slice child cardinality",
        lambda r: r["identifier"][0].pop("value"),
        ("Procedure.identifier[0]", "card:Procedure.identifier:a.value"),
    ),
    (
        "required binding (imported ValueSet)",
        lambda r: r["followUp"][0]["coding"][0].update(code="1"),
        ("Procedure.followUp[0]", "binding:Procedure.followUp"),
    ),
    (
        "required binding of an extension value (exclude honoured)",
        lambda r: r["extension"][0]["valueCodeableConcept"]["coding"][0].update(code="abstract"),
        ("Procedure.extension[0].valueCodeableConcept", "binding:Extension.value[x]"),
    ),
    (
        "choice type not allowed",
        lambda r: (r.pop("performedPeriod"), r.update(performedDateTime="2025-04-02")),
        ("Procedure.performedDateTime", "type:Procedure.performed[x]"),
    ),
    (
        "invariant false",
        lambda r: r["performedPeriod"].update(end="2025-04-02T08:15:00-05:00"),
        ("Procedure", "t-1"),
    ),
    (
        "invariant with an empty result fails",
        lambda r: r.pop("statusReason"),
        ("Procedure", "t-empty"),
    ),
    (
        "max 0 in an extension definition",
        lambda r: r["extension"][0].update(extension=[{"url": "x", "valueString": "y"}]),
        ("Procedure.extension[0]", "card:Extension.extension"),
    ),
    (
        "code not in a local complete CodeSystem",
        lambda r: r["code"]["coding"].append({"system": f"{B}/CodeSystem/color", "code": "pink"}),
        ("Procedure.code.coding[1]", f"codesystem:{B}/CodeSystem/color"),
    ),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_check_fails_with_its_rule_and_location(
    index: ProfileIndex, change: Callable[[dict[str, Any]], Any], expected: tuple[str, str]
) -> None:
    found = errors(validate(mutated(change), index))
    assert expected in found
    assert found - {expected} <= {
        ("Procedure", "t-boom"),
        ("Procedure.extension[0]", "ext-1"),
        ("Procedure.code.coding[1]", "binding:Procedure.code"),
    }


def test_extensible_binding_is_a_warning(index: ProfileIndex) -> None:
    res = mutated(lambda r: r["code"]["coding"][0].update(system=SCT, code="80146002"))
    issues = validate(res, index)
    hits = [i for i in issues if i.details == "binding:Procedure.code"]
    assert [(i.severity, i.expression) for i in hits] == [("warning", "Procedure.code")]
    assert not errors(issues) - {("Procedure", "t-boom")}


def test_preferred_binding_is_not_checked(index: ProfileIndex) -> None:
    res = mutated(lambda r: r.update(outcome={"coding": [{"system": SCT, "code": "385669000"}]}))
    assert not [i for i in validate(res, index) if i.details == "binding:Procedure.outcome"]


def test_intensional_value_set_gives_a_warning_never_an_error(index: ProfileIndex) -> None:
    res = mutated(lambda r: r.update(complication=[{"coding": [{"system": SCT, "code": "1"}]}]))
    hits = [i for i in validate(res, index) if i.details == "binding:Procedure.complication"]
    assert [(i.severity, i.code) for i in hits] == [("warning", "not-supported")]
    assert "cannot be checked offline" in (hits[0].diagnostics or "")


def test_unknown_extension_is_a_warning(index: ProfileIndex) -> None:
    res = mutated(lambda r: r["extension"].append({"url": "https://x.org/ext", "valueString": "y"}))
    issues = validate(res, index)
    hits = [i for i in issues if i.details == "extension:https://x.org/ext"]
    assert [(i.severity, i.expression) for i in hits] == [("warning", "Procedure.extension[1]")]


def test_unknown_meta_profile_is_an_error(index: ProfileIndex) -> None:
    res = mutated(lambda r: r["meta"].update(profile=["https://nowhere.org/StructureDefinition/x"]))
    hits = [i for i in validate(res, index) if i.is_error]
    assert [(i.expression, i.details) for i in hits] == [
        ("Procedure.meta.profile[0]", "unknown-profile")
    ]
    assert "unknown profile" in (hits[0].diagnostics or "")


def test_explicit_profile_argument_overrides_meta(index: ProfileIndex) -> None:
    res = mutated(lambda r: r.pop("meta"))
    res.pop("extension")
    assert ("Procedure", "slice:Procedure.extension:color") in errors(
        validate(res, index, profile=PROFILE)
    )


def test_type_without_profile_is_structure_only_information(index: ProfileIndex) -> None:
    issues = validate({"resourceType": "Patient", "gender": "female", "text": NARRATIVE}, index)
    assert [(i.severity, i.details) for i in issues] == [("information", "no-profile")]
    # without a narrative: the core dom-6 best-practice warning, as HAPI gives it
    issues = validate({"resourceType": "Patient", "gender": "female"}, index)
    assert [(i.severity, i.details) for i in issues] == [
        ("information", "no-profile"),
        ("warning", "dom-6"),
    ]


def test_wrong_resource_type_is_a_structure_error(index: ProfileIndex) -> None:
    issues = validate({"resourceType": "Procedur", "status": "completed"}, index)
    assert [(i.severity, i.code, i.details) for i in issues] == [
        ("error", "structure", "structure:resourceType")
    ]
    assert validate([1, 2], index)[0].is_error


def test_structure_errors_have_fhirpath_locations(index: ProfileIndex) -> None:
    res = mutated(lambda r: r["code"]["coding"][0].update(code=5, bogus=1))
    found = {(i.expression, i.details) for i in validate(res, index) if i.is_error}
    assert ("Procedure.code.coding[0].code", "structure:type") in found
    assert ("Procedure.code.coding[0].bogus", "structure:unknown") in found


def _bundle(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


PATIENT = {"resourceType": "Patient", "gender": "female"}
PRACTITIONER = {"resourceType": "Practitioner", "name": [{"family": "X"}]}
#: fullUrls: a urn:uuid is a lower-case UUID (docs/validation.md#uris)
U1, U2 = (f"urn:uuid:00000000-0000-4000-8000-00000000000{n}" for n in (1, 2))


def test_bundle_resolves_references_and_prefixes_locations(index: ProfileIndex) -> None:
    proc = mutated(lambda r: r.update(subject={"reference": U1}))
    ok = _bundle(_entry(U1, PATIENT), _entry(U2, proc))
    assert not errors(validate(ok, index)) - {("Bundle.entry[1].resource", "t-boom")}
    proc["code"].pop("coding")
    proc.pop("code")
    found = errors(validate(ok, index))
    assert ("Bundle.entry[1].resource", "card:Procedure.code") in found


def test_bundle_target_profile_type_is_checked(index: ProfileIndex) -> None:
    proc = mutated(lambda r: r.update(subject={"reference": U1}))
    bad = _bundle(_entry(U1, PRACTITIONER), _entry(U2, proc))
    assert ("Bundle.entry[1].resource.subject", "target:Procedure.subject") in errors(
        validate(bad, index)
    )


def test_bundle_unresolvable_reference_is_an_error(index: ProfileIndex) -> None:
    proc = mutated(lambda r: r.update(subject={"reference": "urn:uuid:missing"}))
    found = errors(validate(_bundle(_entry(U2, proc)), index))
    assert ("Bundle.entry[0].resource.subject", "ref:unresolved") in found


def test_bundle_rules_duplicate_full_url_and_missing_request(index: ProfileIndex) -> None:
    first, second = _entry(U1, PATIENT), _entry(U1, PATIENT)
    second.pop("request")
    found = errors(validate(_bundle(first, second), index))
    assert ("Bundle.entry[1]", "bdl-7") in found
    assert ("Bundle.entry[1]", "bdl-3") in found


def test_bundle_entry_structure_error_is_located_in_the_entry(index: ProfileIndex) -> None:
    bad = dict(PATIENT, gender=3)
    found = errors(validate(_bundle(_entry(U1, bad)), index))
    assert ("Bundle.entry[0].resource.gender", "structure:type") in found


def test_structure_false_skips_the_structural_checks(index: ProfileIndex) -> None:
    res = mutated(lambda r: r["code"]["coding"][0].update(bogus=1))
    assert not [
        i
        for i in validate(res, index, structure=False)
        if (i.details or "").startswith("structure")
    ]


def test_record_field_renders_as_extension_and_diagnostics_suffix() -> None:
    issue = Issue(
        "error",
        "invariant",
        "Procedure.bodySite[0]",
        "no side",
        "iastm-proc-4",
        record_field="treatment_sites[0]",
    )
    rendered = operation_outcome([issue])["issue"][0]
    assert rendered["expression"] == ["Procedure.bodySite[0]"]
    assert rendered["diagnostics"] == "no side (record field: treatment_sites[0])"
    assert rendered["extension"] == [
        {"url": RECORD_FIELD_EXTENSION, "valueString": "treatment_sites[0]"}
    ]


def test_extension_outside_its_context_is_an_error(index: ProfileIndex) -> None:
    ext = copy.deepcopy(GOOD["extension"][0])
    res = mutated(lambda r: r["code"].update(extension=[ext]))
    found = errors(validate(res, index))
    assert ("Procedure.code", f"context:{COLOR}") in found
    assert ("Procedure", f"context:{COLOR}") not in found  # the root use stays allowed
