"""The equality corpus of the fast-path tests: every JSON document under tests/data (and the
resource each mutation case holds), the good examples' Bundles and their resources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fhir_iastm.mapping import to_fhir
from fhir_iastm.records import load_record

ROOT = Path(__file__).resolve().parents[2]


def documents() -> Iterator[Any]:
    for path in sorted((ROOT / "tests/data").rglob("*.json")):
        document = json.loads(path.read_text())
        yield document
        if isinstance(document, dict) and isinstance(document.get("resource"), dict):
            yield document["resource"]  # a mutation case: the resource it holds
    for path in sorted((ROOT / "tests/data/examples").glob("good-*.json")):
        bundle = to_fhir(load_record(json.loads(path.read_text())))
        yield bundle
        yield from (entry["resource"] for entry in bundle["entry"])
