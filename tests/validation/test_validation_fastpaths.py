"""The validator's fast paths give the same issues as the slow ones they stand for: the one-step
check of a plain extension (``extfast.FAST``, vs the full walk of its definition) and the R4
walk's skipping of a type's invariant just met as its element's (``r4check.SKIP_MET``). Compared
on every JSON document under tests/data (the mutation corpus included), the good examples'
Bundles and their resources, with and without the R4 shape checks; and on hypothesis-made
extensions (right and wrong urls, value types, lists, nested extensions) alone and in resources.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_iastm.errors import Issue
from fhir_iastm.mapping import to_fhir
from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.records import load_record
from fhir_iastm.validation import extfast, r4check, validate
from fhir_iastm.validation.context import ValidationContext
from fhir_iastm.validation.elements import check_resource
from tests.validation.corpus import documents

ROOT = Path(__file__).resolve().parents[2]


@cache
def index() -> ProfileIndex:
    return load_profiles(ROOT / "profiles")


@cache
def good_bundles() -> tuple[dict[str, Any], ...]:
    examples = sorted((ROOT / "tests/data/examples").glob("good-*.json"))
    return tuple(to_fhir(load_record(json.loads(p.read_text()))) for p in examples)


def _both(document: Any) -> dict[bool, list[list[Issue]]]:
    """Issues with and without the fast paths (with and without the R4 shape checks)."""
    runs: dict[bool, list[list[Issue]]] = {}
    try:
        for fast in (True, False):
            extfast.FAST = r4check.SKIP_MET = fast
            runs[fast] = [validate(document, index(), structure=s) for s in (True, False)]
    finally:
        extfast.FAST = r4check.SKIP_MET = True
    return runs


def test_the_corpus_gets_the_same_issues() -> None:
    corpus = list(documents())
    assert len(corpus) > 300
    found = [_both(d) for d in corpus]
    assert all(runs[True] == runs[False] for runs in found)
    # most of our extension definitions take the one step (else the test proves little)
    plain = [extfast.plain_extension(d.root) for d in index().extensions.values()]
    assert sum(p is not None for p in plain) > len(plain) // 2


def _urls() -> list[str]:
    return sorted(index().extensions) + ["http://example.org/unknown"]


VALUES = st.sampled_from(
    [
        1,
        0,
        -3,
        True,
        "pre",
        "x",
        "",
        None,
        [],
        {},
        [1],
        {"coding": [{"system": "http://snomed.info/sct", "code": "24028007"}]},
        {"coding": [{"system": "http://example.org", "code": "nope"}]},
        {"text": "only text"},
    ]
)
VALUE_KEYS = st.sampled_from(
    [
        "valueString",
        "valueCode",
        "valuePositiveInt",
        "valueBoolean",
        "valueCodeableConcept",
        "valueDuration",
        "valueDateTime",
        "valueReference",
        "value",
        "valuex",
    ]
)


def _value_keys(url: str) -> st.SearchStrategy[str]:
    """The ``value<Type>`` keys the extension definition allows."""
    value = index().extensions[url].root.children.get("value[x]")
    codes = [t.code for t in value.types] if value is not None else []
    return st.sampled_from(["value" + c[:1].upper() + c[1:] for c in codes] or ["valueString"])


@st.composite
def extensions(draw: st.DrawFn, url: str | None = None) -> dict[str, Any]:
    """An extension instance, mostly with ``url`` (else any known or unknown one)."""
    ext: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        ext["url"] = url if url and draw(st.integers(0, 3)) else draw(st.sampled_from(_urls()))
    for _ in range(draw(st.integers(0, 2))):
        keys = _value_keys(url) if url and draw(st.booleans()) else VALUE_KEYS
        ext[draw(keys)] = draw(VALUES)
    if not draw(st.integers(0, 4)):
        ext["extension"] = draw(st.sampled_from([[], [{"url": "x", "valueString": "y"}], {}]))
    if not draw(st.integers(0, 4)):
        ext["id"] = "e1"
    return ext


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), url=st.sampled_from(sorted(index().extensions)))
def test_generated_extensions_get_the_same_issues(data: st.DataObject, url: str) -> None:
    ext = data.draw(extensions(url))
    root = index().extensions[url].root
    fast, slow = ValidationContext(index()), ValidationContext(index())
    extfast.check_extension(root, copy.deepcopy(ext), fast, "Procedure.extension[0]")
    check_resource(root, copy.deepcopy(ext), slow, "Procedure.extension[0]")
    assert fast.issues == slow.issues


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ext=extensions(), which=st.integers(0, 10_000))
def test_generated_extensions_in_resources_get_the_same_issues(
    ext: dict[str, Any], which: int
) -> None:
    resources = [e["resource"] for b in good_bundles() for e in b["entry"]]
    resource = copy.deepcopy(resources[which % len(resources)])
    resource.setdefault("extension", []).append(ext)
    runs = _both(resource)
    assert runs[True] == runs[False]
    bundle = copy.deepcopy(good_bundles()[which % len(good_bundles())])
    bundle["entry"][0]["extension"] = [copy.deepcopy(ext)]  # the Bundle's own walk: no dedupe
    runs = _both(bundle)
    assert runs[True] == runs[False]
