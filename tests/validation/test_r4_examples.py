"""The official FHIR R4 examples in tests/data/r4-examples/ (copied byte for byte from the pinned
``fhir-test-cases`` package by scripts/derive_r4_examples.py, docs/r4-definitions.md#examples):
the committed files equal their manifest (offline), and every one validates against base R4
(the R4 structure, core invariants and core required bindings; no IASTM profile) without an
error, except the few the specification ships invalid (``INVALID``, each confirmed by HAPI
``$validate``; four of them by the rules of docs/validation.md#core-codes and #uris)."""

from __future__ import annotations

import hashlib
import json
import runpy
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.validation import validate
from tests.validation.test_r4_fuzz import FUZZ, assert_verdict, mutate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "data" / "r4-examples"
CORE = "http://hl7.org/fhir/StructureDefinition/"


@cache
def manifest() -> dict[str, Any]:
    found: dict[str, Any] = json.loads((EXAMPLES / "MANIFEST.json").read_text())
    return found


def example(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((EXAMPLES / name).read_bytes())
    return found


def test_committed_examples_equal_their_manifest() -> None:
    files = manifest()["files"]
    on_disk = {p.name for p in EXAMPLES.iterdir()} - {"MANIFEST.json"}
    assert on_disk == set(files)
    for name, digest in files.items():
        assert hashlib.sha256((EXAMPLES / name).read_bytes()).hexdigest() == digest, name
    source = manifest()["source"]
    assert source["artifact"] == "org.hl7.fhir.testcases:fhir-test-cases:1.7.69"
    assert source["folder"] == "org/hl7/fhir/testcases/r4/examples/"
    assert len(files) == 72
    assert all(not n.endswith(".out") for n in files)


def test_manifest_names_the_pinned_source_of_the_derivation_script() -> None:
    """Changing the pin in scripts/derive_r4_examples.py without deriving again fails here."""
    script = runpy.run_path(str(ROOT / "scripts" / "derive_r4_examples.py"))
    source = manifest()["source"]
    assert source == {
        "artifact": script["ARTIFACT"],
        "url": script["URL"],
        "sha256": script["JAR_SHA256"],
        "folder": script["FOLDER"],
    }
    assert script["encode"](manifest()) == (EXAMPLES / "MANIFEST.json").read_bytes()


#: The resource types fhir-iastm writes -> their examples in the package (it ships no Procedure).
OUR_TYPES = {
    "Patient": ["patient-example.json"],
    "Practitioner": ["practitioner-example.json"],
    "Organization": ["organization-1.json", "organization-example.json"],
    "Condition": ["condition-example.json"],
    "Encounter": ["encounter-example.json"],
    "Observation": ["observation-decimal.json", "observation-example.json"],
    "Procedure": [],
}
FORM = "codesystem:http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"
#: Examples the specification ships invalid: file -> (the rule ids we report, why). HAPI
#: ``$validate`` (base R4) reports the same defects (tests/integration/test_oracle_hapi.py).
INVALID = {
    "bundle-questionnaire.json": (
        {f"card:Questionnaire.item{'.item' * n}.linkId" for n in range(1, 5)},
        "50 nested Questionnaire items without linkId, which R4 requires (1..1) on every item",
    ),
    "codesystem-example.json": (
        {"csd-1"},
        "the code 'chol-mass' is defined twice; csd-1: all codes of a CodeSystem SHALL be unique",
    ),
    # docs/validation.md#core-codes, docs/validation.md#uris
    "capabilitystatement-example.json": (
        {"uri:uuid", "uri:canonical"},
        "url 'urn:uuid:68D043B5-...' is not a lower-case UUID; messaging.supportedMessage"
        ".definition 'MessageDefinition/example' is a relative canonical",
    ),
    "medicationdispense0301.json": (
        {FORM},
        "Quantity.code 'Vial' is not a code of the complete CodeSystem v3-orderableDrugForm",
    ),
    "medicationstatementexample1.json": (
        {FORM},
        "Quantity.code 'Tab' is not a code of the (case-sensitive) v3-orderableDrugForm ('TAB')",
    ),
    "operationdefinition-example.json": (
        {"uri:canonical"},
        "base 'OperationDefinition/Questionnaire-populate' is a relative canonical",
    ),
}


@cache
def index() -> ProfileIndex:
    return load_profiles(ROOT / "profiles")


def error_rules(resource: dict[str, Any]) -> set[str | None]:
    """The rule ids of the errors against base R4 (the core URL of the type: no IASTM profile)."""
    issues = validate(resource, index(), profile=CORE + resource["resourceType"])
    return {i.details for i in issues if i.is_error}


def by_type() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in sorted(manifest()["files"]):
        found.setdefault(example(name)["resourceType"], []).append(name)
    return found


def test_the_examples_of_our_types_are_the_ones_the_package_ships() -> None:
    shipped = by_type()
    assert {t: shipped.get(t, []) for t in OUR_TYPES} == OUR_TYPES
    assert "Procedure" not in shipped  # fhir-test-cases 1.7.69 has no R4 Procedure example


@pytest.mark.parametrize("name", [n for names in OUR_TYPES.values() for n in names])
def test_examples_of_our_types_validate_without_an_error(name: str) -> None:
    assert error_rules(example(name)) == set()


@pytest.mark.parametrize(
    "name", sorted(set(manifest()["files"]) - set().union(*OUR_TYPES.values()))
)
def test_every_other_example_validates_without_an_error_unless_shipped_invalid(name: str) -> None:
    expected = INVALID.get(name, (set(), ""))[0]
    assert error_rules(example(name)) == expected


@FUZZ
@given(data=st.data())
def test_mutated_official_examples_get_a_verdict(data: st.DataObject) -> None:
    """The fuzz of tests/validation/test_r4_fuzz.py on the examples of 60 other resource types:
    1 to 4 values deleted or replaced by arbitrary JSON; a verdict, never the internal issue."""
    resource = example(data.draw(st.sampled_from(sorted(manifest()["files"]))))
    mutate(data, resource, 4)
    assert_verdict(validate(resource, index()))
    if isinstance(resource.get("resourceType"), str):
        assert_verdict(validate(resource, index(), profile=CORE + resource["resourceType"]))
