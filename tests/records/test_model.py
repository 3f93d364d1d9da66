"""model.from_dict rebuilds exactly the record that records.load_record builds, for trusted data."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from fhir_iastm.records import model
from fhir_iastm.records import load_record
from tests.strategies import valid_records

EXAMPLES = sorted((Path(__file__).parents[1] / "data" / "examples").glob("good-*.json"))


def test_examples_rebuild_to_the_loaded_record() -> None:
    for path in EXAMPLES:
        raw = json.loads(path.read_text())
        assert model.from_dict(model.SessionRecord, raw) == load_record(raw), path.name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records())
def test_generated_records_rebuild_to_the_loaded_record(raw: dict) -> None:
    loaded = load_record(raw)
    rebuilt = model.from_dict(model.SessionRecord, raw)
    assert rebuilt == loaded
    assert model.from_dict(model.SessionRecord, model.to_dict(loaded)) == loaded
