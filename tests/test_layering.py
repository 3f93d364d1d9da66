"""The core imports no edge library (docs/architecture.md#layers, docs/architecture.md#layers):
checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = [
    "fhir_iastm",
    "fhir_iastm.errors",
    "fhir_iastm.records.model",
    "fhir_iastm.records",
    "fhir_iastm.mapping",
]
OPTIONAL_CORE = ["fhir_iastm.validation", "fhir_iastm.profiles"]
EDGE_LIBRARIES = ["flask", "requests", "sqlalchemy", "click", "werkzeug", "psycopg"]

PROBE = """
import importlib, importlib.util, json, sys
loaded, missing = [], []
for name in {core} + {optional}:
    if name in {optional} and importlib.util.find_spec(name) is None:
        missing.append(name)
        continue
    importlib.import_module(name)
    loaded.append(name)
# exercise the mapper too: lazy imports must stay core-only
from fhir_iastm.mapping import to_fhir, from_fhir
from fhir_iastm.records import load_record
record = load_record(json.load(open({example!r})))
from_fhir(to_fhir(record))
print(json.dumps({{"loaded": loaded, "missing": missing,
                  "edge": sorted(m for m in {edge} if m in sys.modules)}}))
"""


def test_core_imports_no_edge_library() -> None:
    example = ROOT / "tests/data/examples/good-06-post-tka-tecnica-gavilan-rom-lefs.json"
    code = PROBE.format(
        core=CORE, optional=OPTIONAL_CORE, edge=EDGE_LIBRARIES, example=str(example)
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(CORE) <= set(result["loaded"])
    assert result["edge"] == []


def test_probe_would_see_an_edge_import() -> None:
    """The probe is not vacuous: importing the CLI (an edge) does load click."""
    code = "import sys, fhir_iastm.cli; print('click' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip() == "True"
