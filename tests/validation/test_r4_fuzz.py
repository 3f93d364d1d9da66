"""Never a crash: arbitrary JSON, R4-shaped junk and mutated valid resources always get a verdict
(a list of issues) and never the ``internal`` issue a validator exception becomes."""

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
from fhir_iastm.validation import validate
from fhir_iastm.validation.r4defs import resource_types, shape

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def index() -> ProfileIndex:
    return load_profiles(ROOT / "profiles")


@cache
def good_bundles() -> tuple[str, ...]:
    examples = sorted((ROOT / "tests/data/examples").glob("good-*.json"))
    return tuple(json.dumps(to_fhir(load_record(json.loads(p.read_text())))) for p in examples)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "2025-04-02T08:15:00-05:00",
            "2025-13-01",
            "urn:uuid:x",
            "#a",
            "Patient/1",
            "<div/>",
            "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
            "completed",
            "home",
        ]
    )
)
KEYS = st.sampled_from(
    [
        "resourceType",
        "id",
        "extension",
        "url",
        "valueString",
        "valueCode",
        "value",
        "coding",
        "system",
        "code",
        "reference",
        "contained",
        "entry",
        "resource",
        "fullUrl",
        "text",
        "div",
        "status",
        "start",
        "end",
        "_status",
        "meta",
        "profile",
        "component",
        "valueQuantity",
    ]
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def assert_verdict(issues: list[Issue]) -> None:
    assert isinstance(issues, list)
    assert all(isinstance(i, Issue) for i in issues)
    assert not [i for i in issues if i.details == "internal"], issues


@FUZZ
@given(document=JSON)
def test_arbitrary_json_gets_a_verdict(document: Any) -> None:
    assert_verdict(validate(document, index()))


@st.composite
def r4_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A resource of a random R4 type whose keys are mostly that type's own element names."""
    name = draw(st.sampled_from(sorted(resource_types())))
    compiled = shape(name)
    assert compiled is not None
    keys = st.sampled_from(sorted(compiled.by_key)) | KEYS
    body = draw(st.dictionaries(keys, JSON, max_size=6))
    return {**body, "resourceType": name}


@FUZZ
@given(resource=r4_shaped())
def test_r4_shaped_junk_gets_a_verdict(resource: dict[str, Any]) -> None:
    assert_verdict(validate(resource, index()))
    assert_verdict(validate(resource, index(), structure=False))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def mutate(data: st.DataObject, document: dict[str, Any], most: int) -> None:
    """Delete or replace (by arbitrary JSON) 1 to ``most`` values of ``document``, in place."""
    for _ in range(data.draw(st.integers(1, most))):
        path = data.draw(st.sampled_from(_paths(document)))
        owner = document
        for step in path[:-1]:
            owner = owner[step]
        if data.draw(st.booleans()) and isinstance(owner, dict):
            del owner[path[-1]]
        else:
            owner[path[-1]] = data.draw(JSON)


@FUZZ
@given(data=st.data())
def test_mutated_valid_bundles_get_a_verdict(data: st.DataObject) -> None:
    bundle = json.loads(data.draw(st.sampled_from(good_bundles())))
    mutate(data, bundle, 4)
    assert_verdict(validate(copy.deepcopy(bundle), index()))
    assert_verdict(
        validate(bundle, index(), profile="http://hl7.org/fhir/StructureDefinition/Bundle")
    )
