"""records: the example files, the public API, canonical JSON, round trip and hostile input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.strategies import DELETE, EXAMPLES, example, pointer_to_path, with_changes

from fhir_iastm.records import model
from fhir_iastm.errors import InvalidRecordError, Issue
from fhir_iastm.records import (
    canonical_json,
    check_batch,
    check_record,
    http_status_for,
    load_record,
    record_hash,
)

GOOD = sorted(p.stem for p in EXAMPLES.glob("good-*.json"))
BAD = sorted(p.stem for p in EXAMPLES.glob("bad-*.json") if not p.stem.endswith(".expected"))


def codes(issues: list[Issue]) -> list[tuple[str | None, str | None]]:
    return [(i.details, i.expression) for i in issues]


def expected(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.expected.json").read_text(encoding="utf-8"))


def test_examples_are_all_there() -> None:
    assert len(GOOD) == 9  # good-09: a record contract 2.0 example
    assert len(BAD) == 6


@pytest.mark.parametrize("name", GOOD)
def test_good_example_loads_without_issues(name: str) -> None:
    record, issues = check_record(example(name))
    assert issues == []
    assert isinstance(record, model.SessionRecord)
    assert load_record(example(name)) == record


@pytest.mark.parametrize("name", GOOD)
def test_round_trip_through_to_dict(name: str) -> None:
    record = load_record(example(name))
    assert load_record(model.to_dict(record)) == record


@pytest.mark.parametrize("name", GOOD)
def test_values_are_kept_as_sent(name: str) -> None:
    data = example(name)
    record = load_record(data)
    assert record.session.start == data["session"]["start"]
    assert record.recorded_at == data["recorded_at"]
    assert [c.icd10cm for c in record.conditions] == [c["icd10cm"] for c in data["conditions"]]
    assert isinstance(record.treatment_sites, tuple)


@pytest.mark.parametrize("name", [b for b in BAD if "duplicate-session" not in b])
def test_bad_example_gives_exactly_the_expected_error(name: str) -> None:
    want = expected(name)
    error = want["expected"]["errors"][0]
    with pytest.raises(InvalidRecordError) as info:
        load_record(example(name))
    assert info.value.codes == [(error["code"], pointer_to_path(error["path"]))]
    assert http_status_for(info.value.issues) == want["http_status"] == 422
    assert info.value.http_status == 422


def test_bad_06_is_a_duplicate_session_after_good_01() -> None:
    want = expected("bad-06-duplicate-session-id")
    error = want["expected"]["errors"][0]
    first, second = check_batch([example(GOOD[0]), example("bad-06-duplicate-session-id")])
    assert first[0] is not None
    assert first[1] == []
    assert second[0] is None
    assert codes(second[1]) == [(error["code"], pointer_to_path(error["path"]))]
    assert second[1][0].code == "duplicate"
    assert http_status_for(second[1]) == want["http_status"] == 409


def test_bad_06_alone_is_valid() -> None:
    assert check_record(example("bad-06-duplicate-session-id"))[1] == []


def test_batch_identical_repeat_is_informational() -> None:
    results = check_batch([example(GOOD[0]), example(GOOD[0])])
    record, issues = results[1]
    assert record == results[0][0]
    assert codes(issues) == [("W_IDEMPOTENT_REPEAT", "session_id")]
    assert issues[0].severity == "information"
    assert http_status_for(issues) == 200


def test_batch_repeat_differing_only_in_last_modified_is_identical() -> None:
    again = with_changes(example(GOOD[0]), {"/last_modified": "2025-03-05T10:00:00Z"})
    assert codes(check_batch([example(GOOD[0]), again])[1][1]) == [
        ("W_IDEMPOTENT_REPEAT", "session_id")
    ]
    # billing is content (docs/decisions.md#hash-with-billing): same version, other content
    rebilled = with_changes(example(GOOD[0]), {"/billing": DELETE})
    assert codes(check_batch([example(GOOD[0]), rebilled])[1][1]) == [
        ("E_DUPLICATE_SESSION", "session_id")
    ]


def test_batch_higher_version_is_accepted_and_lower_is_stale() -> None:
    v1 = example(GOOD[0])
    v2 = with_changes(v1, {"/record_version": 2, "/pain/post": 2})
    v1_other = with_changes(v1, {"/notes": "amended"})
    results = check_batch([v1, v2, v1_other])
    assert results[1][0] is not None
    assert results[1][1] == []
    assert results[2][0] is None
    assert codes(results[2][1]) == [("E_STALE_VERSION", "record_version")]
    assert http_status_for(results[2][1]) == 409


def test_batch_keeps_invalid_items_apart() -> None:
    results = check_batch([example("bad-02-pain-11"), "nonsense", example(GOOD[1])])
    assert [r is None for r, _ in results] == [True, True, False]
    assert codes(results[0][1]) == [("E_RANGE", "pain.post")]
    assert codes(results[1][1]) == [("E_TYPE", None)]


def test_http_status_for() -> None:
    warning = Issue("warning", "business-rule", "session.session_number", "x", "W_PLAN_EXCEEDED")
    error = Issue("error", "value", "pain.post", "x", "E_RANGE")
    conflict = Issue("error", "conflict", "record_version", "x", "E_STALE_VERSION")
    assert http_status_for([warning]) == 200
    assert http_status_for([warning, error]) == 422
    assert http_status_for([error, conflict]) == 409


@pytest.mark.parametrize("data", [[], "record", None, 42, True, [example(GOOD[0])]])
def test_wrong_top_level_type(data: object) -> None:
    record, issues = check_record(data)
    assert record is None
    assert codes(issues) == [("E_TYPE", None)]
    with pytest.raises(InvalidRecordError) as info:
        load_record(data)
    assert info.value.codes == [("E_TYPE", None)]


def test_empty_object_names_every_missing_field() -> None:
    record, issues = check_record({})
    assert record is None
    assert {i.details for i in issues} == {"E_REQUIRED"}
    assert {i.expression for i in issues} == {
        "schema_version", "session_id", "record_version", "status", "recorded_at", "clinic",
        "patient", "therapist", "session", "technique", "treatment_sites", "conditions",
    }  # fmt: skip


def test_several_defects_are_all_reported() -> None:
    data = with_changes(
        example(GOOD[0]),
        {
            "/session_id": "bad id!",
            "/pain/post": 11,
            "/technique/code": "cupping",
            "/clinic/npi": "1234567890",
            "/treatment_sites/0/laterality": "L",
            "/conditions/0/icd10cm": "M77.1",
            "/session/duration_min": 55,
            "/extra": True,
        },
    )
    with pytest.raises(InvalidRecordError) as info:
        load_record(data)
    assert sorted(info.value.codes) == sorted(
        [
            ("E_FORMAT", "session_id"),
            ("E_RANGE", "pain.post"),
            ("E_CODE_UNKNOWN", "technique.code"),
            ("E_NPI_INVALID", "clinic.npi"),
            ("E_CODE_UNKNOWN", "treatment_sites[0].laterality"),
            ("E_ICD_NOT_BILLABLE", "conditions[0].icd10cm"),
            ("E_DURATION_MISMATCH", "session.duration_min"),
            ("E_UNKNOWN_FIELD", "extra"),
        ]
    )
    assert all(i.diagnostics for i in info.value.issues)
    outcome = info.value.operation_outcome()
    assert len(outcome["issue"]) == 8
    assert {tuple(i["expression"]) for i in outcome["issue"]} >= {("pain.post",)}


@pytest.mark.parametrize(
    ("pointer", "path"),
    [
        ("/foo", "foo"),
        ("/pain/vas", "pain.vas"),
        ("/treatment_sites/0/side", "treatment_sites[0].side"),
        ("/clinic/address/country", "clinic.address.country"),
        ("/bad key", "`bad key`"),
    ],
)
def test_unknown_fields_are_named(pointer: str, path: str) -> None:
    record, issues = check_record(with_changes(example(GOOD[0]), {pointer: "x"}))
    assert record is None
    assert codes(issues) == [("E_UNKNOWN_FIELD", path)]
    assert issues[0].code == "structure"


@pytest.mark.parametrize(
    ("pointer", "size", "code"),
    [
        ("/notes", 4000, None),
        ("/notes", 4001, "E_FORMAT"),
        ("/notes", 10_000_000, "E_FORMAT"),
        ("/conditions/0/text", 1001, "E_FORMAT"),
        ("/patient/family_name", 201, "E_FORMAT"),
        ("/clinic/name", 100_000, "E_FORMAT"),
        ("/session_id", 65, "E_FORMAT"),
        ("/patient/mrn", 65, "E_FORMAT"),
        ("/conditions/0/icd10cm", 5000, "E_FORMAT"),
        ("/session/start", 5000, "E_FORMAT"),
    ],
)
def test_huge_strings(pointer: str, size: int, code: str | None) -> None:
    record, issues = check_record(with_changes(example(GOOD[0]), {pointer: "A" * size}))
    want = [] if code is None else [(code, pointer_to_path(pointer))]
    assert codes(issues) == want
    assert all(len(i.diagnostics or "") < 500 for i in issues)


def test_huge_array_is_bounded() -> None:
    sites = [{"site": "knee", "laterality": "right"}] * 5000
    _, issues = check_record(with_changes(example(GOOD[0]), {"/treatment_sites": sites}))
    assert codes(issues) == [("E_FORMAT", "treatment_sites")]


def test_canonical_json_ignores_key_order_and_last_modified_not_billing() -> None:
    data = example(GOOD[2])
    reordered = dict(reversed(list(data.items())))
    reordered["session"] = dict(reversed(list(data["session"].items())))
    changed = with_changes(reordered, {"/last_modified": DELETE})
    assert canonical_json(data) == canonical_json(changed)
    rebilled = with_changes(data, {"/billing": {"cpt_lines": [{"code": "97110", "units": 1}]}})
    assert canonical_json(data) != canonical_json(rebilled)
    assert canonical_json(data, legacy=True) == canonical_json(rebilled, legacy=True)
    assert canonical_json(load_record(data)) == canonical_json(data)
    assert record_hash(load_record(data)) == record_hash(changed)
    assert b"last_modified" not in canonical_json(data)


def test_canonical_json_is_jcs_and_sees_content() -> None:
    data = example(GOOD[0])
    text = canonical_json(data)
    content = {k: v for k, v in data.items() if k != "last_modified"}
    content = with_changes(content, {"/adverse_effects": DELETE})  # empty arrays are dropped
    plain = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert text == plain.encode("utf-8")  # JCS equals sorted compact JSON for this content
    other = with_changes(data, {"/pain/post": 4})
    assert record_hash(data) != record_hash(other)
    assert len(record_hash(data)) == 64
    assert int(record_hash(data), 16) >= 0


def test_canonical_json_treats_empty_arrays_and_false_primary_as_absent() -> None:
    data = example(GOOD[0])
    same = with_changes(data, {"/adverse_effects": DELETE})
    assert canonical_json(data) == canonical_json(same)
    a = with_changes(example(GOOD[3]), {"/conditions/1/is_primary": DELETE})
    assert canonical_json(a) == canonical_json(example(GOOD[3]))


def test_null_optional_values_mean_absent() -> None:
    data = with_changes(example(GOOD[0]), {"/notes": None, "/rom": None, "/pain/post": None})
    record = load_record(data)
    assert record.notes is None
    assert record.rom == ()
    assert record.pain is not None
    assert record.pain.post is None


def test_plan_exceeded_is_only_a_warning() -> None:
    data = with_changes(example(GOOD[0]), {"/session/session_number": 9})
    record, issues = check_record(data)
    assert record is not None
    assert codes(issues) == [("W_PLAN_EXCEEDED", "session.session_number")]
    assert issues[0].severity == "warning"
    assert issues[0].code == "business-rule"
    assert load_record(data) == record


@pytest.mark.parametrize(
    ("pointer", "value", "code"),
    [
        ("/record_version", 10**5000, "E_RANGE"),
        ("/record_version", -(10**5000), "E_FORMAT"),
        ("/pain/post", [0] * 100_000, "E_TYPE"),
        ("/pain/post", float("inf"), "E_TYPE"),
        ("/session/duration_min", 10**400, "E_RANGE"),
    ],
    ids=["huge-int", "huge-negative-int", "big-array", "infinity", "int-10e400"],
)
def test_huge_numbers_and_values(pointer: str, value: object, code: str) -> None:
    _, issues = check_record(with_changes(example(GOOD[0]), {pointer: value}))
    assert codes(issues) == [(code, pointer_to_path(pointer))]
    assert all(len(i.diagnostics or "") < 200 for i in issues)


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("/patient/mrn", "MRN/SECRET-77"),
        ("/patient/birth_date", "1978-02-30"),
        ("/patient/email", "secret-77"),
        ("/session/start", "2025-03-04T09:77:00-06:00"),
    ],
)
def test_patient_values_and_dates_are_not_echoed(pointer: str, value: str) -> None:
    _, issues = check_record(with_changes(example(GOOD[0]), {pointer: value}))
    assert codes(issues) == [("E_FORMAT", pointer_to_path(pointer))]
    assert value not in (issues[0].diagnostics or "")
    assert "SECRET" not in (issues[0].diagnostics or "")
