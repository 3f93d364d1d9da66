"""The fast path of the invariants (``invariants.FAST``: a native twin's True taken without the
rest of ``invariants.run``) gives the same issues as sending every invariant through
``invariants.run``: on every JSON document under tests/data (the mutation corpus included), the
good examples' Bundles and their resources, with and without the R4 shape checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.profiles import load_profiles
from fhir_iastm.validation import invariants, validate
from tests.validation.corpus import documents

ROOT = Path(__file__).resolve().parents[2]


def test_fast_path_gives_the_same_issues(monkeypatch: pytest.MonkeyPatch) -> None:
    index = load_profiles(ROOT / "profiles")
    corpus = list(documents())
    assert len(corpus) > 300
    runs: dict[bool, list[Any]] = {}
    for fast in (True, False):
        monkeypatch.setattr(invariants, "FAST", fast)
        runs[fast] = [validate(d, index, structure=s) for d in corpus for s in (True, False)]
    assert runs[True] == runs[False]
    # the corpus makes invariants fail (else the comparison would prove little)
    assert sum(i.code == "invariant" for issues in runs[True] for i in issues) > 50
