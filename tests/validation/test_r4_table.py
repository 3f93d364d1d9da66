"""The committed R4 table (fhir_iastm/data/r4.json.gz) equals its derivation from the pinned
hapi-fhir-validation-resources-r4 jar (docs/r4-definitions.md)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
import subprocess
from functools import cache
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@cache
def derive_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("derive_r4", ROOT / "scripts" / "derive_r4.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def pinned_jar() -> Path:
    """The jar from ~/.m2; fetched there with Maven when absent. Never skipped: no jar = FAIL."""
    derive = derive_module()
    jar: Path = derive.default_jar()
    if not jar.exists() and shutil.which("mvn"):
        subprocess.run(
            ["mvn", "-q", "dependency:get", f"-Dartifact={derive.ARTIFACT}", "-Dtransitive=false"],
            check=False,
            capture_output=True,
            timeout=600,
        )
    if not jar.exists():
        pytest.fail(
            f"the pinned R4 definitions {derive.ARTIFACT} are not in {jar} and Maven could not "
            "fetch them: run `mvn dependency:get -Dartifact=" + derive.ARTIFACT + "`"
        )
    return jar


def committed() -> dict[str, Any]:
    raw = resources.files("fhir_iastm").joinpath("data/r4.json.gz").read_bytes()
    table: dict[str, Any] = json.loads(gzip.decompress(raw))
    return table


def test_committed_table_equals_its_derivation_from_the_pinned_jar() -> None:
    derived = derive_module().derive(pinned_jar())
    table = committed()
    assert table["source"] == derived["source"]
    for part in ("primitives", "constraints", "valuesets", "codesystems"):
        assert table[part] == derived[part], part
    assert table["types"].keys() == derived["types"].keys()
    for name, definition in derived["types"].items():
        assert table["types"][name] == definition, name


def test_table_covers_r4_and_only_r4() -> None:
    table = committed()
    assert table["source"]["fhirVersion"] == "4.0.1"
    kinds = {n: t["kind"] for n, t in table["types"].items()}
    resources_ = {n for n, k in kinds.items() if k == "resource"}
    # R4 4.0.1 has 146 resource types plus the abstract Resource and DomainResource
    assert len(resources_) == 148
    assert {"MedicinalProduct", "EffectEvidenceSynthesis", "Procedure"} <= resources_
    assert not {"SubscriptionTopic", "Citation", "NutritionProduct"} & resources_
    assert table["primitives"]["date"].startswith("([0-9]([0-9]([0-9][1-9]")


def test_required_bindings_and_invariants_are_the_published_ones() -> None:
    table = committed()
    status = table["types"]["Procedure"]["elements"]["Procedure.status"]
    assert status[:2] == [1, "1"]
    assert status[4] == "http://hl7.org/fhir/ValueSet/event-status"
    codes = {code for _s, code in table["valuesets"][status[4]]}
    assert codes == {
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    }
    per_1 = "start.hasValue().not() or end.hasValue().not() or (start <= end)"
    assert table["constraints"]["per-1"][2] == per_1
    assert "con-5" in table["types"]["Condition"]["elements"]["Condition"][5]
