"""``jsonin.check`` clears most documents from their JSON text without a walk over every string
(``source``); whatever it is given, the verdict — accepted, or the same refusal naming the same
place — must be the one of the full walk."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_iastm.jsonin import _DECODER, JsonInputError, JsonLimits, check

SMALL = JsonLimits(max_depth=4, max_string=12)


def verdict(value: Any, limits: JsonLimits, source: str | None) -> tuple[str, str | None] | None:
    try:
        check(value, limits, source)
    except JsonInputError as exc:
        return exc.message, exc.where
    return None


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"a": [{"b": {"c": {"d": 1}}}]}',
        "[[[[1]]]]",
        "[[[1]]]",
        '{"k": "\\ud800"}',
        '{"k": "\\uDFFF x"}',
        '{"k": "\\ud83d\\ude00"}',
        '{"k": "\\\\ud800"}',
        '{"k": "abcdefghijklmnop"}',
        '{"abcdefghijklmnop": 1}',
        '{"k": "\\u00e9t\\u00e9"}',
        '"plain"',
        '{"x": [{"y": 1, "y": 1}]}',
    ],
)
def test_with_the_text_the_verdict_is_the_full_walks(text: str) -> None:
    value = _DECODER.decode(text)
    for limits in (SMALL, JsonLimits()):
        assert verdict(value, limits, text) == verdict(value, limits, None)


def test_a_raw_surrogate_in_the_text_is_still_found() -> None:
    text = '{"k": "a\ud800"}'
    value = _DECODER.decode(text)
    assert verdict(value, SMALL, text) == verdict(value, SMALL, None) is not None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=14),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["a", "b", "\ud800", "long-key-over-12"]), inner, max_size=3
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON, duplicate=st.booleans(), ensure_ascii=st.booleans())
def test_any_document_gets_the_full_walks_verdict(
    value: Any, duplicate: bool, ensure_ascii: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    if duplicate and text.startswith("{") and text != "{}":
        text = '{"a": 0, "a": 0, ' + text[1:]
    parsed = _DECODER.decode(text)
    assert verdict(parsed, SMALL, text) == verdict(parsed, SMALL, None)
