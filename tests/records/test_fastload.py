"""records.fastload: the compiled loader accepts only what marshmallow accepts and loads the same
record (compared by ``repr``, which tells ``1`` from ``1.0`` and ``True``); anything else is left
to marshmallow, so errors stay marshmallow's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, fields

from fhir_iastm.records import check_record, load
from fhir_iastm.records.fastload import compile_field, fast_loader
from fhir_iastm.records.fields import Text
from fhir_iastm.records.schemas import RECORD_SCHEMA
from tests.records.test_records_generated import _json, _pointers
from tests.strategies import DELETE, valid_records, with_changes

EXAMPLES = sorted((Path(__file__).parent.parent / "data" / "examples").glob("*.json"))
FAST = fast_loader(RECORD_SCHEMA)


def _marshmallow(data: Any) -> Any:
    try:
        return RECORD_SCHEMA.load(data)
    except ValidationError:
        return None


def _same_or_unsure(data: Any) -> Any:
    """The fast record, after checking it is marshmallow's (or that the fast loader declined)."""
    fast = FAST(data)
    if fast is not None:
        slow = _marshmallow(data)
        assert slow is not None, "the fast loader accepted what marshmallow refuses"
        assert repr(fast) == repr(slow)
    return fast


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads_as_marshmallow_loads_it(path: Path) -> None:
    data = json.loads(path.read_text())
    for item in data if isinstance(data, list) else [data]:
        fast = _same_or_unsure(item)
        if path.name.startswith("good-"):
            assert fast is not None  # the common valid case takes the fast path


def test_the_fast_path_is_the_one_check_record_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    good = json.loads(EXAMPLES[[p.name for p in EXAMPLES].index(
        "good-01-lateral-epicondylitis-graston.json")].read_text())
    monkeypatch.setattr(load, "RECORD_SCHEMA", None)  # marshmallow unused: it would fail
    record, issues = check_record(good)
    assert record is not None
    assert issues == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records())
def test_generated_records_load_fast_and_alike(data: dict[str, Any]) -> None:
    assert _same_or_unsure(data) is not None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records(), st.data())
def test_damaged_records_are_refused_or_loaded_alike(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    pointer = draw.draw(st.sampled_from(_pointers(data)))
    replacement = draw.draw(st.just(DELETE) | _json | st.sampled_from(
        [None, [], {}, "", " ", 0, 1, -1, 1.0, 6.5, True, False, "x" * 300, "2025-02-30",
         "\x01", 2**40, float("nan")]))
    _same_or_unsure(with_changes(data, {pointer: replacement}))


@settings(max_examples=100, deadline=None)
@given(_json)
def test_any_json_value_is_left_to_marshmallow(value: Any) -> None:
    assert FAST(value) is None


def test_unsupported_marshmallow_features_are_refused_at_compile_time() -> None:
    with pytest.raises(TypeError):
        compile_field(fields.String())  # not one of the record's field classes
    with_key = Text(max_len=3)
    with_key.data_key = "other"
    with pytest.raises(TypeError):
        compile_field(with_key)
