"""``jsonfast`` writes exactly the stdlib's bytes (or raises exactly as it does) for any value:
arbitrary JSON-like trees and the values where orjson and ``json`` are known to differ. The
reference is what the project wrote before: ``json`` without the cycle check."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_iastm.jsonfast import dumps_compact, dumps_pair, dumps_sorted


def std_sorted(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      check_circular=False).encode()


def std_compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, check_circular=False)


def outcome(function: Any, value: Any) -> Any:
    """What ``function(value)`` gives, or the type of what it raises."""
    try:
        return function(value)
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        return type(exc)


def assert_same(value: Any) -> None:
    expected_sorted, expected_compact = outcome(std_sorted, value), outcome(std_compact, value)
    assert outcome(dumps_sorted, value) == expected_sorted
    assert outcome(dumps_compact, value) == expected_compact
    if isinstance(expected_sorted, bytes) and isinstance(expected_compact, str):
        assert dumps_pair(value) == (expected_sorted, expected_compact)
    else:  # either refused: the pair raises as the stdlib does
        assert outcome(dumps_pair, value) in (expected_sorted, expected_compact)


TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF,
                             categories=None), max_size=12)  # surrogates included
NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-3, max_value=1e-3), st.floats(min_value=1e14, max_value=1e18),
    st.sampled_from([0.0, -0.0, 1e-5, 1e-4, 9.999e-5, 1e15, 1e16, 1e17, 5e-324, 1e308]),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(TEXT, inner, max_size=5)), max_leaves=30)


@settings(max_examples=1500, deadline=None)
@given(VALUES)
def test_equal_to_the_stdlib_on_any_json_value(value: Any) -> None:
    assert_same(value)


@settings(max_examples=300, deadline=None)
@given(st.floats())
def test_a_float_is_written_as_python_writes_it(number: float) -> None:
    assert dumps_compact([number]) == std_compact([number])
    assert dumps_sorted({"v": number}) == std_sorted({"v": number})


class Text(str):
    def __str__(self) -> str:
        return "other"


class Number(int):
    def __repr__(self) -> str:
        return "other"


class Ratio(float):
    def __repr__(self) -> str:
        return "other"


class Color(enum.IntEnum):
    RED = 1


class Code(enum.StrEnum):
    A = "a"


@dataclasses.dataclass
class Point:
    x: int


EDGES: list[Any] = [
    1e16, 1e-05, -1e-07, 1e22, 1.5e300, 1e-300, float("nan"), float("inf"), -float("inf"),
    [float("nan")], {"a": float("inf")}, -0.0, 0.0001, 123456789012345.6,
    2**63 - 1, 2**63, 2**64, -2**63, -2**63 - 1, 2**100, [2**64], {"n": -2**90},
    "\ud800", ["a\udfffb"], {"\ud83d": 1}, "\ud83d\ude00", "😀é\u2028\u2029",
    "\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\x80\x9f\"\\/", {"\x7f": "\x1f"},
    {1: "a"}, {1.5: "a"}, {None: 1}, {True: 1}, {"b": 1, 2: 3},
    {"é": 1, "z": 2, "a": 3, "😀": 4, "\uffff": 5, "\ue000": 6, "A": 7, "": 8},
    Text("x"), {"k": Text("x")}, {Text("k"): 1}, Number(5), [Number(5)], Ratio(0.5),
    Color.RED, [Color.RED], Code.A, {"c": Code.A}, OrderedDict([("b", 1), ("a", 2)]),
    True, False, None, [None], {"k": None}, "null", ":1e5", ["x", ",null"],
    {"id": "548edfcc-2692-5890-a03e-1234", "v": 1.5e-7}, ["a03e-12", 2.5e-05], [1e-7, "e+"],
    datetime.date(2024, 1, 2), Point(1), b"bytes", {"s": {1, 2}}, (1, 2), {"t": (1, "a")},
    [[[[[[[[[[1.25]]]]]]]]]], {"a": {"b": {"c": [1, 2.5, "x", None]}}},
]


@pytest.mark.parametrize("value", EDGES, ids=repr)
def test_equal_to_the_stdlib_where_orjson_differs(value: Any) -> None:
    assert_same(value)


def test_a_cycle_raises_as_the_stdlib_does() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert_same(loop)


def test_the_fast_path_is_taken_for_a_plain_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resource without floats in exponent form never reaches the stdlib (else no gain), nor
    does a UUID holding ``3e-`` (which a negative exponent resembles)."""
    import fhir_iastm.jsonfast as jsonfast

    def refuse(value: Any) -> str:
        raise AssertionError("the stdlib was used")

    resource = {"resourceType": "Observation", "id": "x1", "valueQuantity": {"value": 4.5},
                "component": [{"valueInteger": 3}], "note": [{"text": "pain 3/10, é 😀"}],
                "subject": {"reference": "Patient/548edfcc-2692-5890-a03e-eac009f8544c"}}
    expected_sorted, expected_compact = std_sorted(resource), std_compact(resource)
    monkeypatch.setattr(jsonfast._STD_SORTED, "encode", refuse)
    monkeypatch.setattr(jsonfast._STD_COMPACT, "encode", refuse)
    assert dumps_sorted(resource) == expected_sorted
    assert dumps_compact(resource) == expected_compact
    assert dumps_pair(resource) == (expected_sorted, expected_compact)
