"""Exact R4 (docs/r4-definitions.md#r4b): where R4 4.0.1 and R4B differ for the types we handle,
the validator judges by R4 — tested both ways; the R4B definitions (from the pinned R4B jar, next
to the R4 one in ~/.m2) prove the table of differences is complete; official R4 content in the
pinned package validates without an error."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.validation import validate
from fhir_iastm.validation.r4defs import resource_types, table
from tests.validation.test_r4_table import derive_module, pinned_jar

ROOT = Path(__file__).resolve().parents[2]
OURS = (
    "Procedure",
    "Condition",
    "Observation",
    "Patient",
    "Practitioner",
    "Organization",
    "Encounter",
    "Bundle",
    "OperationOutcome",
    "Parameters",
    "Provenance",
)
#: The differences, as docs/r4-definitions.md#r4b lists them.
R4_ONLY_TYPES = {
    "EffectEvidenceSynthesis",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "RiskEvidenceSynthesis",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
}
R4B_ONLY_TYPES = {
    "AdministrableProductDefinition",
    "Citation",
    "ClinicalUseDefinition",
    "EvidenceReport",
    "Ingredient",
    "ManufacturedItemDefinition",
    "MedicinalProductDefinition",
    "NutritionProduct",
    "PackagedProductDefinition",
    "RegulatedAuthorization",
    "SubscriptionStatus",
    "SubscriptionTopic",
    "SubstanceDefinition",
}
EXTENSION_VALUE_R4_ONLY = {"Meta"}
EXTENSION_VALUE_R4B_ONLY = {"CodeableReference", "RatioRange"}


def r4b_types() -> dict[str, Any]:
    derive = derive_module()
    jar = (
        pinned_jar()
        .as_posix()
        .replace("hapi-fhir-validation-resources-r4/", "hapi-fhir-validation-resources-r4b/")
        .replace("resources-r4-", "resources-r4b-")
    )
    if not Path(jar).exists():
        pytest.fail(f"the R4B definitions jar is not in {jar} (the HAPI test server build has it)")
    out: dict[str, Any] = {"types": {}, "primitives": {}, "constraints": {}, "valuesets": {}}
    with zipfile.ZipFile(jar) as zf:
        roots = [
            ET.fromstring(zf.read(f"org/hl7/fhir/r4b/model/profile/{name}"))
            for name in ("profiles-types.xml", "profiles-resources.xml")
        ]
    derive._structures(roots, out)
    return dict(out["types"])


def _codes(types: dict[str, Any], path: str) -> set[str]:
    return {code for code, _t in types[path.split(".")[0]]["elements"][path][2]}


def test_the_table_of_differences_is_complete() -> None:
    r4, r4b = table()["types"], r4b_types()
    kinds = lambda types: {n for n, t in types.items() if t["kind"] == "resource"}  # noqa: E731
    assert kinds(r4) - kinds(r4b) == R4_ONLY_TYPES
    assert kinds(r4b) - kinds(r4) == R4B_ONLY_TYPES
    # for our resource types and every data type they use: element paths, cardinality and
    # types agree, but for Extension.value[x] and the type code of ``id``
    used = set(OURS)
    for name in OURS:
        used |= {c for e in r4[name]["elements"].values() for c, _t in e[2] if c in r4}
    for name in sorted(used):
        a, b = r4[name]["elements"], r4b[name]["elements"]
        assert a.keys() == b.keys(), name
        for path in a:
            primitive_value = r4[name]["kind"] == "primitive-type" and path == f"{name}.value"
            if path.endswith(".id") or path == "Extension.value[x]" or primitive_value:
                continue  # ids and a primitive's FHIRPath system type are typed differently
            assert a[path][:2] == b[path][:2], path
            assert [t[0] for t in a[path][2]] == [t[0] for t in b[path][2]], path
    ext = "Extension.value[x]"
    assert _codes(r4, ext) - _codes(r4b, ext) == EXTENSION_VALUE_R4_ONLY
    assert _codes(r4b, ext) - _codes(r4, ext) == EXTENSION_VALUE_R4B_ONLY


@pytest.fixture(scope="module")
def index() -> ProfileIndex:
    return load_profiles(ROOT / "profiles")


def _errors(resource: dict[str, Any], index: ProfileIndex) -> set[tuple[str | None, str | None]]:
    return {(i.expression, i.details) for i in validate(resource, index) if i.is_error}


@pytest.mark.parametrize("name", sorted(R4_ONLY_TYPES))
def test_r4_only_resource_types_are_known(name: str, index: ProfileIndex) -> None:
    assert name in resource_types()
    errors = _errors({"resourceType": name, "id": "a1"}, index)
    assert "structure:resourceType" not in {rule for _p, rule in errors}, errors


@pytest.mark.parametrize("name", sorted(R4B_ONLY_TYPES))
def test_r4b_only_resource_types_are_unknown(name: str, index: ProfileIndex) -> None:
    assert name not in resource_types()
    assert _errors({"resourceType": name, "id": "a1"}, index) == {(name, "structure:resourceType")}


def test_medicinal_product_is_validated_by_its_r4_definition(index: ProfileIndex) -> None:
    good = {"resourceType": "MedicinalProduct", "name": [{"productName": "Aspirin"}]}
    assert _errors(good, index) == set()
    assert _errors({**good, "name": [{}]}, index) == {
        ("MedicinalProduct.name[0]", "structure:empty")
    }
    assert _errors({**good, "name": [{"namePart": [{"part": "x"}]}]}, index) == {
        ("MedicinalProduct.name[0]", "card:MedicinalProduct.name.productName"),
        ("MedicinalProduct.name[0].namePart[0]", "card:MedicinalProduct.name.namePart.type"),
    }


def _with_extension(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "code": {"text": "x"},
        "extension": [{"url": "http://example.org/fhir/StructureDefinition/x", **value}],
    }


def test_extension_value_types_are_r4s(index: ProfileIndex) -> None:
    assert _errors(_with_extension({"valueMeta": {"versionId": "1"}}), index) == set()
    for key, value in (
        ("valueCodeableReference", {"concept": {"text": "x"}}),
        ("valueRatioRange", {"denominator": {"value": 1}}),
    ):
        assert _errors(_with_extension({key: value}), index) == {
            (f"Basic.extension[0].{key}", "structure:unknown")
        }


def test_resource_id_is_an_id(index: ProfileIndex) -> None:
    assert _errors({"resourceType": "Basic", "id": "a.b-1", "code": {"text": "x"}}, index) == set()
    assert _errors({"resourceType": "Basic", "id": "a b", "code": {"text": "x"}}, index) == {
        ("Basic.id", "structure:format")
    }
    # element ids are strings
    coded = {"resourceType": "Basic", "code": {"id": "a b", "text": "x"}}
    assert _errors(coded, index) == set()


def test_official_r4_search_parameters_validate_without_errors(index: ProfileIndex) -> None:
    """The pinned package ships no examples; its one JSON document is the R4 4.0.1 Bundle of
    every SearchParameter (1,375 official R4 resources)."""
    with zipfile.ZipFile(pinned_jar()) as zf:
        bundle = json.loads(zf.read("org/hl7/fhir/r4/model/sp/search-parameters.json"))
    assert len(bundle["entry"]) > 1000
    issues = validate(bundle, index)
    assert [i for i in issues if i.is_error] == []
