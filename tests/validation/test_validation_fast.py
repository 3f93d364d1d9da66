"""The fast path of the invariants (``invariants.FAST``: a native twin's True taken without the
rest of ``invariants.run``) gives the same issues as sending every invariant through
``invariants.run``: on every JSON document under tests/data (the mutation corpus included), the
good examples' Bundles and their resources, with and without the R4 shape checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.mapping import to_fhir
from fhir_iastm.profiles import load_profiles
from fhir_iastm.records import load_record
from fhir_iastm.validation import invariants, validate

ROOT = Path(__file__).resolve().parents[2]


def _documents() -> Iterator[Any]:
    for path in sorted((ROOT / "tests/data").rglob("*.json")):
        document = json.loads(path.read_text())
        yield document
        if isinstance(document, dict) and isinstance(document.get("resource"), dict):
            yield document["resource"]  # a mutation case: the resource it holds
    for path in sorted((ROOT / "tests/data/examples").glob("good-*.json")):
        bundle = to_fhir(load_record(json.loads(path.read_text())))
        yield bundle
        yield from (entry["resource"] for entry in bundle["entry"])


def test_fast_path_gives_the_same_issues(monkeypatch: pytest.MonkeyPatch) -> None:
    index = load_profiles(ROOT / "profiles")
    documents = list(_documents())
    assert len(documents) > 300
    runs: dict[bool, list[Any]] = {}
    for fast in (True, False):
        monkeypatch.setattr(invariants, "FAST", fast)
        runs[fast] = [validate(d, index, structure=s) for d in documents for s in (True, False)]
    assert runs[True] == runs[False]
    # the corpus makes invariants fail (else the comparison would prove little)
    assert sum(i.code == "invariant" for issues in runs[True] for i in issues) > 50
