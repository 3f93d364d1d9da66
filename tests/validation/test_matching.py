"""``matching.matcher`` (a fixed[x]/pattern[x] compiled once) answers as ``pattern_matches`` and
``fixed_matches`` do, for every JSON pattern and value hypothesis makes — and for the patterns
of our profiles against the values of the good examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_iastm.mapping import to_fhir
from fhir_iastm.profiles import ElementNode, load_profiles
from fhir_iastm.records import load_record
from fhir_iastm.validation.matching import fixed_matches, matcher, pattern_matches

ROOT = Path(__file__).resolve().parents[2]
LEAVES = (
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, -1, 1.0, 0.0, 2.5, "", "a", "b", "1", "true", "http://loinc.org"])
)
JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["system", "code", "coding", "value", "a"]), inner, max_size=3
        )
    ),
    max_leaves=8,
)
SETTINGS = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])


SAMPLES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    1.0,
    0.0,
    "",
    "a",
    "1",
    "true",
    [],
    {},
    ["a"],
    [1],
    [True],
    {"a": "a"},
    {"a": 1},
    {"a": True},
    {"a": ["a"]},
    {"a": {"a": "a"}},
    [{"a": "a"}],
]


def test_matcher_answers_on_every_pair_of_samples() -> None:
    for pattern in SAMPLES:
        compiled, exact = matcher(pattern), matcher(pattern, exact=True)
        for value in SAMPLES:
            assert compiled(value) is pattern_matches(pattern, value), (pattern, value)
            assert exact(value) is fixed_matches(pattern, value), (pattern, value)


@SETTINGS
@given(pattern=JSON, value=JSON)
def test_matcher_answers_as_pattern_and_fixed_matches(pattern: Any, value: Any) -> None:
    assert matcher(pattern)(value) is pattern_matches(pattern, value)
    assert matcher(pattern, exact=True)(value) is fixed_matches(pattern, value)


@SETTINGS
@given(pattern=JSON, data=st.data())
def test_matcher_answers_on_values_near_the_pattern(pattern: Any, data: st.DataObject) -> None:
    """Values made from the pattern itself (equal, or one part changed) match more often than
    independent ones: the interesting cases."""
    value = json.loads(json.dumps(pattern))
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        value[data.draw(st.sampled_from(sorted(value)))] = data.draw(JSON)
    if isinstance(value, dict) and data.draw(st.booleans()):
        value["extra"] = 1
    assert matcher(pattern)(value) is pattern_matches(pattern, value)
    assert matcher(pattern, exact=True)(value) is fixed_matches(pattern, value)


def _nodes(node: ElementNode) -> list[ElementNode]:
    out = [node]
    for child in (*node.children.values(), *node.slices.values()):
        out.extend(_nodes(child))
    return out


def _values(document: Any) -> list[Any]:
    out = [document]
    if isinstance(document, dict):
        for item in document.values():
            out.extend(_values(item))
    elif isinstance(document, list):
        for item in document:
            out.extend(_values(item))
    return out


def test_matcher_answers_for_our_profiles_on_the_good_examples() -> None:
    index = load_profiles(ROOT / "profiles")
    roots = [p.root for p in (*index.profiles.values(), *index.extensions.values())]
    specs = [n.fixed or n.pattern for r in roots for n in _nodes(r) if n.fixed or n.pattern]
    examples = sorted((ROOT / "tests/data/examples").glob("good-*.json"))
    values = [v for p in examples for v in _values(to_fhir(load_record(json.loads(p.read_text()))))]
    assert len(specs) > 20
    matched = 0
    for _kind, spec in specs:  # type: ignore[misc]
        compiled, exact = matcher(spec), matcher(spec, exact=True)
        for value in values:
            assert compiled(value) is pattern_matches(spec, value)
            assert exact(value) is fixed_matches(spec, value)
            matched += compiled(value)
    assert matched > 100  # the profiles' patterns do match the examples' values
