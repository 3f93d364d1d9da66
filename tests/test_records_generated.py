"""records: every record from ``strategies.valid_records()`` is accepted, and survives to_dict."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from strategies import valid_records

from fhir_iastm import model
from fhir_iastm.records import canonical_json, check_record, load_record


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records())
def test_generated_records_are_valid(data: dict[str, Any]) -> None:
    record, issues = check_record(data)
    assert issues == []
    assert record is not None
    assert load_record(model.to_dict(record)) == record
    assert canonical_json(record) == canonical_json(data)
