"""The real profiles/ against the mapper's output: good examples and generated records validate
with zero errors; iastm-proc-1/per-1 give the right verdict across UTC offsets and DST changes;
the native period check agrees with its FHIRPath text; issues trace back to record fields."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_iastm.mapping import to_fhir
from fhir_iastm.mapping.trace import record_field
from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.records import load_record
from fhir_iastm.validation import validate
from fhir_iastm.validation.invariants import NATIVE, PERIOD_ORDER, passes
from fhir_iastm.validation.scan import utc_copy
from tests.strategies import valid_records

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "tests" / "data" / "examples").glob("good-*.json"))
MCODE_LOCATION_VS = "http://hl7.org/fhir/us/mcode/ValueSet/mcode-body-location-qualifier-vs"
C = "https://iastm.example.org/fhir"

_INDEX: list[ProfileIndex] = []


@pytest.fixture(scope="module")
def index() -> ProfileIndex:
    if not _INDEX:
        _INDEX.append(load_profiles(ROOT / "profiles"))
    return _INDEX[0]


def mapped(name: str) -> dict[str, Any]:
    return to_fhir(load_record(json.loads((ROOT / "tests/data/examples" / name).read_text())))


def entry(bundle: dict[str, Any], suffix: str) -> tuple[int, dict[str, Any]]:
    for i, e in enumerate(bundle["entry"]):
        if any(
            str(x.get("value", "")).endswith(suffix) for x in e["resource"].get("identifier", [])
        ):
            return i, e["resource"]
    raise KeyError(suffix)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_good_example_bundle_has_zero_errors(path: Path, index: ProfileIndex) -> None:
    issues = validate(mapped(path.name), index)
    assert [i for i in issues if i.is_error] == []
    # the mapper writes a narrative (docs/console.md#narrative): no dom-6 best-practice warning
    assert [i for i in issues if i.details == "dom-6"] == []
    for warning in (i for i in issues if i.severity == "warning"):
        # only what docs/decisions.md#d2 says cannot be checked offline
        assert warning.code == "not-supported"
        assert MCODE_LOCATION_VS in (warning.diagnostics or "")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=valid_records())
def test_generated_records_map_to_bundles_without_errors(record: dict[str, Any]) -> None:
    if not _INDEX:
        _INDEX.append(load_profiles(ROOT / "profiles"))
    bundle = to_fhir(load_record(record))
    errors = [i for i in validate(bundle, _INDEX[0]) if i.is_error]
    assert errors == []


# (start, end, start < end?) — instants written in different offsets and across DST changes.
PERIODS = [
    ("2025-04-02T08:15:00-05:00", "2025-04-02T08:45:00-05:00", True),
    # naive text comparison says "end < start"; as instants 13:00Z < 13:30Z
    ("2025-04-02T09:00:00-04:00", "2025-04-02T08:30:00-05:00", True),
    # naive says "end > start"; as instants 13:15Z > 13:00Z
    ("2025-04-02T08:15:00-05:00", "2025-04-02T09:00:00-04:00", False),
    # same instant in two offsets: not start < end
    ("2025-04-02T08:15:00-05:00", "2025-04-02T13:15:00Z", False),
    # DST fall back (US, 2025-11-02): wall clock goes back, time goes forward
    ("2025-11-02T01:50:00-04:00", "2025-11-02T01:10:00-05:00", True),
    ("2025-11-02T01:10:00-05:00", "2025-11-02T01:50:00-04:00", False),
    # DST spring forward (US, 2025-03-09): 01:55 EST then 03:05 EDT is 10 minutes later
    ("2025-03-09T01:55:00-05:00", "2025-03-09T03:05:00-04:00", True),
    ("2025-03-09T03:05:00-04:00", "2025-03-09T01:55:00-05:00", False),
    # Europe (2025-10-26): 02:30+02:00 is 00:30Z, 02:10+01:00 is 01:10Z
    ("2025-10-26T02:30:00+02:00", "2025-10-26T02:10:00+01:00", True),
    # precision: seconds vs fractional seconds
    ("2025-04-02T13:15:00Z", "2025-04-02T13:15:00.000Z", False),
    ("2025-04-02T13:15:00Z", "2025-04-02T13:15:00.5Z", True),
]


@pytest.mark.parametrize(("start", "end", "valid"), PERIODS)
def test_iastm_proc_1_across_offsets_and_dst(
    index: ProfileIndex, start: str, end: str, valid: bool
) -> None:
    bundle = mapped("good-03-plantar-fasciitis-hawkgrips-bruising.json")
    i, proc = entry(bundle, "/procedure")
    proc["performedPeriod"] = {"start": start, "end": end}
    rules = {x.details for x in validate(bundle, index) if x.is_error}
    assert ("iastm-proc-1" not in rules) is valid
    # FHIRPath text on the UTC-normalised copy gives the same verdict as the native check
    constraint = next(
        c
        for c in index.profiles[f"{C}/StructureDefinition/iastm-procedure"].root.constraints
        if c.key == "iastm-proc-1"
    )
    assert passes(constraint.fn(utc_copy(proc), {})) is valid
    assert NATIVE[PERIOD_ORDER](proc, "Procedure") is valid
    assert (
        f"Bundle.entry[{i}].resource"
        in {x.expression for x in validate(bundle, index) if x.details == "iastm-proc-1"}
        or valid
    )


#: the two PERIODS rows whose bounds are the same instant (start <= end holds, start < end not)
SAME_INSTANT = {3, 9}


@pytest.mark.parametrize(("row", "period"), list(enumerate(PERIODS)))
def test_per_1_on_encounter_period_across_offsets(
    index: ProfileIndex, row: int, period: tuple[str, str, bool]
) -> None:
    start, end, ordered = period
    bundle = mapped("good-03-plantar-fasciitis-hawkgrips-bruising.json")
    i, enc = entry(bundle, "/encounter")
    enc["period"] = {"start": start, "end": end}
    per1 = [x.expression for x in validate(bundle, index) if x.details == "per-1"]
    # per-1 is start <= end: only strictly reversed periods fail
    expected = [] if ordered or row in SAME_INSTANT else [f"Bundle.entry[{i}].resource.period"]
    assert per1 == expected


_offsets = st.sampled_from(
    ["Z", "+00:00", "-05:00", "-04:00", "+01:00", "+02:00", "+05:30", "-09:30", "+14:00", "-12:00"]
)


def _stamp(moment: datetime, offset: str, fraction: str) -> str:
    sign = -1 if offset.startswith("-") else 1
    tz = (
        UTC
        if offset == "Z"
        else timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    )
    return moment.astimezone(tz).replace(tzinfo=None, microsecond=0).isoformat() + fraction + offset


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
    minutes=st.integers(-600, 600),
    offsets=st.tuples(_offsets, _offsets),
    fractions=st.tuples(st.sampled_from(["", ".000", ".5"]), st.sampled_from(["", ".250"])),
)
def test_native_period_check_agrees_with_fhirpath_on_utc_copy(
    start: datetime, minutes: int, offsets: tuple[str, str], fractions: tuple[str, str]
) -> None:
    if not _INDEX:
        _INDEX.append(load_profiles(ROOT / "profiles"))
    constraint = next(
        c
        for c in _INDEX[0].profiles[f"{C}/StructureDefinition/iastm-procedure"].root.constraints
        if c.key == "iastm-proc-1"
    )
    end = start + timedelta(minutes=minutes)
    proc = {
        "resourceType": "Procedure",
        "status": "completed",
        "performedPeriod": {
            "start": _stamp(start, offsets[0], fractions[0]),
            "end": _stamp(end, offsets[1], fractions[1]),
        },
    }
    assert NATIVE[PERIOD_ORDER](proc, "Procedure") == passes(constraint.fn(utc_copy(proc), {}))


def test_issues_trace_back_to_record_fields(index: ProfileIndex) -> None:
    bundle = mapped("good-01-lateral-epicondylitis-graston.json")
    _, proc = entry(bundle, "/procedure")
    proc["bodySite"][0]["extension"] = [
        e for e in proc["bodySite"][0]["extension"] if "laterality" not in e["url"]
    ]
    _, post = entry(bundle, "/obs/pain-post")
    post["valueQuantity"].pop("system")
    _, cond = entry(bundle, "/condition/DX-100245-01")
    cond["code"]["coding"][0]["code"] = "M77.12"
    found = validate(bundle, index, trace=record_field)
    fields = {i.details: i.record_field for i in found if i.is_error}
    assert fields["slice:Procedure.bodySite.extension:laterality"] == "treatment_sites[0]"
    assert fields["iastm-proc-4"] == "treatment_sites"
    assert fields["pattern:Observation.value[x]"] == "pain.post"
    assert fields["iastm-cond-2l"] == "conditions.where(condition_id='DX-100245-01').laterality"


def test_record_field_of_an_extension_value(index: ProfileIndex) -> None:
    bundle = mapped("good-03-plantar-fasciitis-hawkgrips-bruising.json")
    _, proc = entry(bundle, "/procedure")
    technique = next(e for e in proc["extension"] if e["url"].endswith("iastm-technique"))
    technique["valueCodeableConcept"]["coding"][0]["code"] = "iastm"
    hits = [
        i
        for i in validate(bundle, index, trace=record_field)
        if i.details == "binding:Extension.value[x]"
    ]
    assert [i.record_field for i in hits] == ["technique.code"]


def test_unresolvable_reference_inside_mapped_bundle(index: ProfileIndex) -> None:
    bundle = mapped("good-03-plantar-fasciitis-hawkgrips-bruising.json")
    broken = copy.deepcopy(bundle)
    i, proc = entry(broken, "/procedure")
    proc["subject"]["reference"] = "urn:uuid:00000000-0000-5000-8000-000000000000"
    found = {(x.expression, x.details) for x in validate(broken, index) if x.is_error}
    assert found == {(f"Bundle.entry[{i}].resource.subject", "ref:unresolved")}


def test_resource_without_meta_profile_uses_the_one_profile_of_its_type(
    index: ProfileIndex,
) -> None:
    bundle = mapped("good-03-plantar-fasciitis-hawkgrips-bruising.json")
    i, patient = next(
        (n, e["resource"])
        for n, e in enumerate(bundle["entry"])
        if e["resource"]["resourceType"] == "Patient"
    )
    patient.pop("meta")
    patient.pop("name")
    found = {(x.expression, x.details) for x in validate(bundle, index) if x.is_error}
    assert found == {(f"Bundle.entry[{i}].resource", "card:Patient.name")}


def test_observation_without_meta_profile_gets_base_checks_only(index: ProfileIndex) -> None:
    bundle = mapped("good-03-plantar-fasciitis-hawkgrips-bruising.json")
    i, post = entry(bundle, "/obs/pain-post")
    post.pop("meta")
    post.pop("text")  # without its narrative: the core dom-6 best-practice warning
    post["valueQuantity"]["value"] = 11  # iastm-obs-1 is a profile rule: not checked now
    issues = [x for x in validate(bundle, index) if x.expression == f"Bundle.entry[{i}].resource"]
    assert [(x.severity, x.details) for x in issues] == [
        ("information", "no-profile"),
        ("warning", "dom-6"),
    ]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.text(max_size=5)
    | st.sampled_from(["2025-04-02T08:15:00-05:00", "urn:uuid:x", "Patient/1", "{score}"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "url",
                    "value",
                    "valueCode",
                    "coding",
                    "system",
                    "code",
                    "extension",
                    "reference",
                    "start",
                    "end",
                    "valueQuantity",
                    "text",
                ]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    )
    for key, value in items:
        out += _paths(value, (*prefix, key))
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_garbage_anywhere_never_crashes_the_validator(data: st.DataObject) -> None:
    if not _INDEX:
        _INDEX.append(load_profiles(ROOT / "profiles"))
    bundle = mapped("good-05-hamstring-strain-gua-sha.json")
    for _ in range(3):
        path = data.draw(st.sampled_from(_paths(bundle)))
        owner = bundle
        for step in path[:-1]:
            owner = owner[step]
        owner[path[-1]] = data.draw(_json)
    issues = validate(bundle, _INDEX[0])
    assert not [i for i in issues if i.details == "internal"], issues


PROC = "https://iastm.example.org/fhir/StructureDefinition/iastm-procedure"
CORE_BUNDLE = "http://hl7.org/fhir/StructureDefinition/Bundle"


@pytest.mark.parametrize("profile", [None, CORE_BUNDLE, PROC])
def test_profile_option_on_a_bundle_keeps_each_entry_to_its_profiles(
    profile: str | None, index: ProfileIndex
) -> None:
    """--profile on a Bundle: the core Bundle URL is known (the Bundle by core Bundle); a
    resource profile applies only to entries of its type that claim none; every entry that
    claims profiles keeps them."""
    bundle = mapped("good-03-plantar-fasciitis-hawkgrips-bruising.json")
    without = [(i.severity, i.expression, i.details) for i in validate(bundle, index)]
    issues = [
        (i.severity, i.expression, i.details) for i in validate(bundle, index, profile=profile)
    ]
    assert [i for i in issues if i[0] in ("error", "fatal")] == []
    assert issues == without


def test_profile_option_on_a_bundle_applies_to_entries_of_its_type(index: ProfileIndex) -> None:
    bundle = mapped("good-03-plantar-fasciitis-hawkgrips-bruising.json")
    i, pain = entry(bundle, "/obs/pain-post")
    pain.pop("meta")
    errors = {
        (x.expression, x.details) for x in validate(bundle, index, profile=PROC) if x.is_error
    }
    assert errors == set()  # a Procedure profile: the unclaimed Observation stays base-only
    pain_profile = "https://iastm.example.org/fhir/StructureDefinition/iastm-pain-observation"
    pain["valueQuantity"]["value"] = 11
    errors = {
        (x.expression, x.details)
        for x in validate(bundle, index, profile=pain_profile)
        if x.is_error
    }
    assert {rule for path, rule in errors if path.startswith(f"Bundle.entry[{i}]")} == {
        "iastm-obs-1"
    }


def test_core_profile_urls_are_known(index: ProfileIndex) -> None:
    patient = {"resourceType": "Patient", "gender": "female"}
    core = "http://hl7.org/fhir/StructureDefinition/Patient"
    rules = {i.details for i in validate(patient, index, profile=core)}
    assert "unknown-profile" not in rules
    claimed = dict(patient, meta={"profile": [core]})
    assert not [i for i in validate(claimed, index) if i.is_error]
    wrong = dict(patient, meta={"profile": ["http://hl7.org/fhir/StructureDefinition/Procedure"]})
    assert {(i.expression, i.details) for i in validate(wrong, index) if i.is_error} == {
        ("Patient.meta.profile[0]", "profile-type")
    }
    unknown = validate(
        {"resourceType": "Bundle", "type": "collection"},
        index,
        profile="http://hl7.org/fhir/StructureDefinition/Nope",
    )
    assert [(i.expression, i.details) for i in unknown if i.is_error] == [
        ("Bundle", "unknown-profile")
    ]


@pytest.mark.parametrize("profile", [None, CORE_BUNDLE, PROC])
def test_profile_option_on_a_bundle_still_judges_entries_by_their_claims_and_the_bundle_by_core(
    profile: str | None, index: ProfileIndex
) -> None:
    """Whatever --profile names, an entry that breaks the profile it claims is reported there,
    and the Bundle itself is judged by the core Bundle definition (bdl-1: no total on a
    transaction)."""
    bundle = mapped("good-03-plantar-fasciitis-hawkgrips-bruising.json")
    i, pain = entry(bundle, "/obs/pain-post")
    pain["valueQuantity"]["value"] = 11
    bundle["total"] = 1
    errors = {
        (x.expression, x.details) for x in validate(bundle, index, profile=profile) if x.is_error
    }
    assert errors == {
        (f"Bundle.entry[{i}].resource", "iastm-obs-1"),
        ("Bundle", "bdl-1"),
    }
