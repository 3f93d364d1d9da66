"""Property tests over ``tests.strategies.valid_records``: every valid record maps, round-trips,
is deterministic, parses with the R4B models and passes our profiles (docs/validation.md#stages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from fhir_iastm.mapping import (
    MappingSettings,
    canonical_for_roundtrip,
    check_structure,
    from_fhir,
    to_fhir,
)
from fhir_iastm.records import load_record
from tests.mapping.support import as_searchset
from tests.strategies import valid_records

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=150, deadline=None, suppress_health_check=SLOW)
@given(valid_records())
def test_every_valid_record_maps_round_trips_and_is_deterministic(data: dict) -> None:
    record = load_record(data)
    bundle = to_fhir(record)
    assert json.dumps(to_fhir(load_record(data))) == json.dumps(bundle)
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    urls = [e["request"]["url"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert len(set(urls)) == len(urls)
    expected = canonical_for_roundtrip(record)
    assert canonical_for_roundtrip(from_fhir(bundle)) == expected
    assert canonical_for_roundtrip(from_fhir(as_searchset(bundle))) == expected
    # a cancelled session with its Conditions contained (docs/decisions.md#cancelled-conditions)
    contained = to_fhir(record, MappingSettings(emit_conditions_for_cancelled=False))
    assert canonical_for_roundtrip(from_fhir(contained)) == expected
    # with CPT allowed, billing round-trips too (docs/clinical.md#billing)
    billed = from_fhir(to_fhir(record, MappingSettings(include_cpt=True)))
    assert canonical_for_roundtrip(billed, billing=True) == canonical_for_roundtrip(
        record, billing=True
    )


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW)
@given(valid_records())
def test_every_mapped_bundle_is_well_formed_and_profile_valid(data: dict) -> None:
    validation = pytest.importorskip("fhir_iastm.validation")
    record = load_record(data)
    for mapping in (MappingSettings(), MappingSettings(emit_conditions_for_cancelled=False)):
        bundle = to_fhir(record, mapping)
        assert check_structure(bundle) == []
        errors = [i for i in validation.validate(bundle, _index(), structure=False) if i.is_error]
        assert errors == []


_CACHE: dict[str, object] = {}


def _index() -> object:
    if "index" not in _CACHE:
        from fhir_iastm.profiles import load_profiles

        _CACHE["index"] = load_profiles(PROFILES)
    return _CACHE["index"]
