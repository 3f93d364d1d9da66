"""The parameter and summary tables equal the official R4 4.0.1 definitions.

Source: ``ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4:8.8.0`` (Maven Central):
``org/hl7/fhir/r4/model/sp/search-parameters.json`` and ``profile/profiles-resources.xml``.
The jar is fetched with Maven when it is not in the local repository yet.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.facade.capability import CONFORMANCE_TYPES, capability_statement
from fhir_iastm.facade.extract import branches
from fhir_iastm.facade.params import PARAMS, RESOURCE_TYPES
from fhir_iastm.facade.summary import SUMMARY_ELEMENTS

ARTIFACT = "ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4:8.8.0"
JAR = (Path.home() / ".m2/repository/ca/uhn/hapi/fhir/hapi-fhir-validation-resources-r4/8.8.0"
       / "hapi-fhir-validation-resources-r4-8.8.0.jar")
FHIR = {"f": "http://hl7.org/fhir"}


@cache
def _jar() -> zipfile.ZipFile:
    if not JAR.exists():
        done = subprocess.run(["mvn", "-B", "-q", "dependency:get", f"-Dartifact={ARTIFACT}",
                               "-Dtransitive=false"], capture_output=True, text=True,
                              timeout=600, check=False)
        assert JAR.exists(), f"cannot fetch {ARTIFACT}: {done.stdout[-2000:]}{done.stderr}"
    return zipfile.ZipFile(JAR)


@cache
def _definitions() -> dict[str, dict[str, Any]]:
    bundle = json.loads(_jar().read("org/hl7/fhir/r4/model/sp/search-parameters.json"))
    return {e["resource"]["url"]: e["resource"] for e in bundle["entry"]}


@pytest.mark.parametrize("param", PARAMS, ids=lambda p: f"{p.resource}-{p.name}")
def test_each_parameter_equals_its_r4_definition(param: Any) -> None:
    source = _definitions()[param.definition]
    assert source["code"] == param.name
    assert source["type"] == param.type
    assert param.resource in source["base"]
    own = [b for b in source["expression"].split(" | ")
           if b.startswith(f"{param.resource}.") or b.startswith(f"({param.resource}.")]
    assert " | ".join(own) == param.expression
    assert sorted(source.get("target", [])) == sorted(param.targets)
    assert branches(param)  # every expression is a form the index walker evaluates


def test_conformance_parameters_are_r4_definitions() -> None:
    statement = capability_statement("http://x/fhir", {}, secured=False)
    for resource in statement["rest"][0]["resource"]:
        for sp in resource["searchParam"]:
            source = _definitions()[sp["definition"]]
            assert (source["code"], source["type"]) == (sp["name"], sp["type"])
            if resource["type"] in CONFORMANCE_TYPES and sp["name"] != "_id":
                assert resource["type"] in source["base"]


def test_summary_elements_equal_the_structure_definitions() -> None:
    root = ET.fromstring(_jar().read("org/hl7/fhir/r4/model/profile/profiles-resources.xml"))
    found = {}
    for sd in root.iterfind("f:entry/f:resource/f:StructureDefinition", FHIR):
        name = sd.find("f:id", FHIR).get("value")  # type: ignore[union-attr]
        if name not in RESOURCE_TYPES:
            continue
        found[name] = tuple(
            el.find("f:path", FHIR).get("value").split(".")[1]  # type: ignore[union-attr]
            for el in sd.iterfind("f:snapshot/f:element", FHIR)
            if el.find("f:path", FHIR).get("value").count(".") == 1  # type: ignore[union-attr]
            and getattr(el.find("f:isSummary", FHIR), "get", lambda _k: None)("value") == "true")
    assert found == SUMMARY_ELEMENTS
