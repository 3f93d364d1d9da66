"""FHIR -> record (docs/decisions.md#round-trip, docs/decisions.md#d11): input shapes, rejections at
FHIRPath locations."""

from __future__ import annotations

import copy

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_iastm.errors import IastmError, InvalidRecordError, MappingError
from fhir_iastm.mapping import canonical_for_roundtrip, from_fhir, to_fhir
from tests.mapping.support import (
    BASE,
    GOOD,
    as_searchset,
    by_profile,
    good,
    mutate,
    resources,
    session_procedure,
)

LAT = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
TIMING = f"{BASE}/StructureDefinition/iastm-measurement-timing"


def _error(exc: MappingError | InvalidRecordError) -> tuple[str | None, str | None]:
    (issue,) = [i for i in exc.issues if i.is_error]
    return issue.details, issue.expression


@pytest.mark.parametrize("name", GOOD)
def test_searchset_with_server_ids_round_trips(name: str) -> None:
    record = good(name)
    searchset = as_searchset(to_fhir(record))
    assert "urn:uuid" not in str(searchset)
    assert canonical_for_roundtrip(from_fhir(searchset)) == canonical_for_roundtrip(record)


@pytest.mark.parametrize("name", ["good-03", "good-06"])
def test_list_of_resources_round_trips(name: str) -> None:
    record = good(name)
    plain = resources(to_fhir(record))
    assert canonical_for_roundtrip(from_fhir(plain)) == canonical_for_roundtrip(record)
    served = resources(as_searchset(to_fhir(record)))
    assert canonical_for_roundtrip(from_fhir(served)) == canonical_for_roundtrip(record)


def test_record_version_comes_from_the_extension() -> None:
    bundle = to_fhir(good("good-03"))
    for ext in session_procedure(bundle)["extension"]:
        if ext["url"].endswith("/source-record-version"):
            ext["valuePositiveInt"] = 9
    assert from_fhir(bundle).record_version == 9


def test_retracted_observation_of_a_live_session_is_ignored() -> None:
    """A dropped measurement pushed as entered-in-error (docs/decisions.md#d8) is not part of the
    record."""
    bundle = as_searchset(to_fhir(good("good-03")))
    extra = mutate(by_profile(bundle, "iastm-pain-observation")[0])
    extra["id"] = "999"
    extra["status"] = "entered-in-error"
    extra["identifier"][0]["value"] = "RBPT-2025-000518/obs/rom/knee-flexion-right-active-pre"
    bundle["entry"].append(
        {"fullUrl": "http://127.0.0.1:8080/fhir/Observation/999", "resource": extra}
    )
    assert from_fhir(bundle).pain.pre == 7


def test_body_site_without_laterality_is_rejected_not_guessed() -> None:
    bundle = to_fhir(good("good-01"))
    site = session_procedure(bundle)["bodySite"][0]
    site["extension"] = [e for e in site["extension"] if e["url"] != LAT]
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value) == ("E_REQUIRED", "Procedure.bodySite[0]")


def test_unknown_laterality_code_is_rejected() -> None:
    bundle = to_fhir(good("good-01"))
    site = session_procedure(bundle)["bodySite"][0]
    site["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] = "419465000"
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value) == ("E_CODE_UNKNOWN", f"Procedure.bodySite[0].extension('{LAT}')")


def test_missing_pain_timing_is_rejected() -> None:
    bundle = to_fhir(good("good-03"))
    pain = by_profile(bundle, "iastm-pain-observation")[1]
    pain["extension"] = [e for e in pain["extension"] if e["url"] != TIMING]
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value) == ("E_REQUIRED", f"Observation.extension('{TIMING}')")


def test_missing_rom_timing_is_rejected() -> None:
    bundle = to_fhir(good("good-06"))
    rom = by_profile(bundle, "iastm-rom-observation")[0]
    rom["extension"] = [e for e in rom["extension"] if e["url"] != TIMING]
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value)[0] == "E_REQUIRED"


def test_two_iastm_procedures_are_rejected() -> None:
    bundle = to_fhir(good("good-03"))
    other = mutate(to_fhir(good("good-01")))
    bundle["entry"].append(
        next(e for e in other["entry"] if e["resource"] is session_procedure(other))
    )
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value) == ("E_REQUIRED", "Procedure.identifier")
    assert "found 2" in info.value.issues[0].diagnostics


def test_no_iastm_procedure_is_rejected() -> None:
    bundle = to_fhir(good("good-03"))
    session_procedure(bundle)["identifier"].pop(0)
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value) == ("E_REQUIRED", "Procedure.identifier")


@pytest.mark.parametrize("status", ["in-progress", "stopped", "unknown", "on-hold"])
def test_unknown_procedure_status_is_rejected(status: str) -> None:
    bundle = to_fhir(good("good-03"))
    session_procedure(bundle)["status"] = status
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value) == ("E_CODE_UNKNOWN", "Procedure.status")


def test_missing_technique_is_rejected() -> None:
    bundle = to_fhir(good("good-03"))
    proc = session_procedure(bundle)
    proc["extension"] = [e for e in proc["extension"] if not e["url"].endswith("/iastm-technique")]
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value) == (
        "E_REQUIRED",
        f"Procedure.extension('{BASE}/StructureDefinition/iastm-technique')",
    )


def test_missing_record_version_is_rejected() -> None:
    bundle = to_fhir(good("good-03"))
    proc = session_procedure(bundle)
    proc["extension"] = [e for e in proc["extension"] if "source-record-version" not in e["url"]]
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value)[0] == "E_REQUIRED"


def test_unknown_body_site_code_is_rejected() -> None:
    bundle = to_fhir(good("good-03"))
    session_procedure(bundle)["bodySite"][0]["coding"][0]["code"] = "forearm"
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert _error(info.value) == ("E_CODE_UNKNOWN", "Procedure.bodySite[0]")


def test_content_errors_surface_through_the_record_contract() -> None:
    """Out-of-range values read from FHIR are rejected by records.load_record (same contract)."""
    bundle = to_fhir(good("good-03"))
    by_profile(bundle, "iastm-pain-observation")[1]["valueQuantity"]["value"] = 11
    with pytest.raises(InvalidRecordError) as info:
        from_fhir(bundle)
    assert ("E_RANGE", "pain.post") in info.value.codes


def test_not_a_bundle_is_rejected() -> None:
    with pytest.raises(MappingError) as info:
        from_fhir("nope")  # type: ignore[arg-type]
    assert _error(info.value)[0] == "E_TYPE"


# ---------------------------------------------------------------- malformed input never crashes

_BUNDLES = [to_fhir(good(name)) for name in ("good-03", "good-06", "good-07", "good-08")]
_BUNDLES += [as_searchset(b) for b in _BUNDLES]
_JUNK = st.sampled_from([None, 1, "x", [], {}, True, [1], {"a": 1}, -3.5, "Patient/1"])


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        out += _paths(value, (*prefix, key))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_fhir_input_gives_mapping_errors_never_crashes(data: st.DataObject) -> None:
    bundle = mutate(data.draw(st.sampled_from(_BUNDLES)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(bundle)))
        parent = bundle
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent.pop(path[-1])
        else:
            # a fresh copy: sampled_from hands out the same list/dict objects, and sharing one
            # between two places of the bundle could make the damaged tree cyclic
            parent[path[-1]] = copy.deepcopy(data.draw(_JUNK))
    failure: IastmError | None = None
    try:
        from_fhir(bundle)
    except IastmError as exc:
        failure = exc
    if failure is not None:
        assert failure.issues
        assert all(i.details for i in failure.issues)


def test_structural_damage_is_reported_at_its_fhirpath() -> None:
    bundle = to_fhir(good("good-03"))
    bundle["entry"][5]["resource"]["bodySite"] = "right foot"
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert info.value.issues[0].expression.startswith("Bundle.entry[5].resource.bodySite")


def test_missing_procedure_status_is_a_structural_error() -> None:
    bundle = to_fhir(good("good-03"))
    del session_procedure(bundle)["status"]
    with pytest.raises(MappingError) as info:
        from_fhir(bundle)
    assert info.value.issues[0].expression == "Bundle.entry[5].resource.status"
