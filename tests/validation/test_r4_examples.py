"""The official FHIR R4 examples in tests/data/r4-examples/ (copied byte for byte from the pinned
``fhir-test-cases`` package by scripts/derive_r4_examples.py, docs/r4-definitions.md#examples):
the committed files equal their manifest (offline), and every one validates against base R4
(the R4 structure, core invariants and core required bindings; no IASTM profile) without an
error, except the few the specification ships invalid (``INVALID``, each confirmed by HAPI
``$validate``)."""

from __future__ import annotations

import hashlib
import json
import runpy
from functools import cache
from pathlib import Path
from typing import Any

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
