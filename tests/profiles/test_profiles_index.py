"""ProfileIndex: differential trees, compiled constraints, ValueSet expansion, load errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fhir_iastm.errors import ConfigError
from fhir_iastm.profiles import load_profiles, parse_profiles

ROOT = Path(__file__).resolve().parents[2]
TEST_PROFILES = ROOT / "tests" / "data" / "validator" / "profiles"
B = "https://test.example.org/fhir"
SCT = "http://snomed.info/sct"
C = "https://iastm.example.org/fhir"


def test_tree_has_elements_slices_and_compiled_constraints() -> None:
    index = load_profiles(TEST_PROFILES)
    profile = index.profiles[f"{B}/StructureDefinition/test-procedure"]
    root = profile.root
    assert profile.type == "Procedure"
    assert [c.key for c in root.constraints] == ["t-1", "t-2", "t-empty", "t-boom"]
    assert all(callable(c.fn) for c in root.constraints)
    assert root.constraints[0].needs_utc
    assert not root.constraints[1].needs_utc
    identifier = root.children["identifier"]
    assert identifier.slicing is not None
    assert identifier.slicing.rules == "closed"
    assert identifier.slices["a"].children["system"].fixed == ("Uri", f"{B}/sid/a")
    assert root.children["extension"].slices["color"].types[0].profiles == (
        f"{B}/StructureDefinition/ext-color",
    )
    assert root.children["performed[x]"].types[0].code == "Period"
    assert index.default_profile("Procedure") == profile.url
    assert index.default_profile("Patient") is None
    assert f"{B}/StructureDefinition/ext-color" in index.extensions


def test_value_set_expansions() -> None:
    vs = load_profiles(TEST_PROFILES).value_sets
    color = f"{B}/CodeSystem/color"
    assert vs[f"{B}/ValueSet/color"] == {
        (color, c) for c in ("red", "dark-red", "light-red", "blue")
    }
    assert vs[f"{B}/ValueSet/severity-plus"] == {
        (SCT, "255604002"),
        (SCT, "6736007"),
        (SCT, "24484000"),
    }
    assert vs[f"{B}/ValueSet/findings"] is None


def test_raw_resources_are_kept_for_serving() -> None:
    index = load_profiles(TEST_PROFILES)
    raw = index.resource("ValueSet", "color")
    assert raw is not None
    assert raw["url"] == f"{B}/ValueSet/color"
    assert "_source" not in raw


def test_parse_profiles_is_pure_and_accepts_dicts() -> None:
    docs = [json.loads(p.read_text()) for p in sorted(TEST_PROFILES.glob("*.json"))]
    index = parse_profiles(docs)
    assert set(index.profiles) == {f"{B}/StructureDefinition/test-procedure"}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not readable JSON"),
        ("[1, 2]", "no resourceType"),
        (json.dumps({"resourceType": "StructureDefinition", "type": "Procedure"}), "without url"),
        (
            json.dumps(
                {
                    "resourceType": "StructureDefinition",
                    "url": "x",
                    "type": "Procedure",
                    "differential": {
                        "element": [
                            {
                                "id": "Procedure",
                                "constraint": [
                                    {"key": "k-1", "severity": "error", "expression": "a.b("}
                                ],
                            }
                        ]
                    },
                }
            ),
            "k-1 does not compile",
        ),
        (
            json.dumps(
                {
                    "resourceType": "StructureDefinition",
                    "url": "x",
                    "type": "Procedure",
                    "differential": {"element": [{"id": "Procedure"}, {"id": "Patient.name"}]},
                }
            ),
            "outside Procedure",
        ),
        (
            json.dumps(
                {
                    "resourceType": "StructureDefinition",
                    "url": "x",
                    "type": "Procedure",
                    "differential": {"element": [{"id": "Procedure", "min": "many"}]},
                }
            ),
            "malformed",
        ),
    ],
    ids=["broken-json", "not-a-resource", "no-url", "bad-fhirpath", "foreign-path", "bad-min"],
)
def test_malformed_profile_file_is_a_config_error_naming_the_file(
    tmp_path: Path, content: str, needle: str
) -> None:
    shutil.copytree(TEST_PROFILES, tmp_path / "p")
    (tmp_path / "p" / "StructureDefinition-broken.json").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_profiles(tmp_path / "p")
    assert "StructureDefinition-broken.json" in info.value.message
    assert needle in info.value.message


def test_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_profiles(tmp_path / "nope")


def test_real_profiles_load_and_expand() -> None:
    index = load_profiles(ROOT / "profiles")
    technique = index.value_sets[f"{C}/ValueSet/iastm-technique"]
    assert technique is not None
    assert (f"{C}/CodeSystem/iastm-technique", "iastm") not in technique  # docs/decisions.md#d4
    assert (f"{C}/CodeSystem/iastm-technique", "graston") in technique
    assert (
        index.value_sets["http://hl7.org/fhir/us/mcode/ValueSet/mcode-body-location-qualifier-vs"]
        is None
    )
    assert index.profiles[f"{C}/StructureDefinition/iastm-procedure"].type == "Procedure"
