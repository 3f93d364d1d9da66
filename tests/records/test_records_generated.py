"""records: generated records are accepted; generated garbage gives issues, never a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.strategies import DELETE, valid_records, with_changes

from fhir_iastm.records import model
from fhir_iastm.errors import InvalidRecordError, Issue, has_errors
from fhir_iastm.records.fields import CATALOGUE
from fhir_iastm.records import canonical_json, check_record, load_record


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records())
def test_generated_records_are_valid(data: dict[str, Any]) -> None:
    record, issues = check_record(data)
    assert issues == []
    assert record is not None
    assert load_record(model.to_dict(record)) == record
    assert canonical_json(record) == canonical_json(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _pointers(value: Any, prefix: str = "") -> list[str]:
    """Every JSON Pointer inside ``value`` (containers and leaves, not the root)."""
    out = []
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, child in children:
        pointer = f"{prefix}/{key}"
        out.append(pointer)
        out.extend(_pointers(child, pointer))
    return out


def _assert_well_formed(issues: list[Issue]) -> None:
    for issue in issues:
        assert issue.details in CATALOGUE
        assert issue.code == CATALOGUE[issue.details][0]
        assert issue.severity == CATALOGUE[issue.details][1]
        assert issue.diagnostics


@settings(max_examples=100, deadline=None)
@given(_json)
def test_any_json_value_gives_issues_not_a_traceback(value: Any) -> None:
    record, issues = check_record(value)
    assert record is None
    assert has_errors(issues)
    _assert_well_formed(issues)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records(), st.data())
def test_a_damaged_record_gives_issues_not_a_traceback(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    pointer = draw.draw(st.sampled_from(_pointers(data)))
    replacement = draw.draw(st.just(DELETE) | _json)
    damaged = with_changes(data, {pointer: replacement})
    record, issues = check_record(damaged)
    _assert_well_formed(issues)
    if record is None:
        with pytest.raises(InvalidRecordError) as info:
            load_record(damaged)
        assert info.value.codes
    else:
        assert not has_errors(issues)
        assert load_record(model.to_dict(record)) == record


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records(fractions=False))
def test_whole_second_records_have_no_fractions(data: dict[str, Any]) -> None:
    assert "." not in data["session"]["start"][19:]
    assert "." not in data["recorded_at"][19:]
    assert check_record(data)[1] == []
