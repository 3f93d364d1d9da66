"""The record's JSON Schema: generated from the marshmallow schemas, as strict where they are, never
stricter; its code lists are the code tables; docs/record.md is its current rendering."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from fhir_iastm.errors import InvalidRecordError
from fhir_iastm.records import load_record
from fhir_iastm.records.contract import record_json_schema
from fhir_iastm.records.descriptions import FIELDS, OBJECTS
from fhir_iastm.records.reference import BEGIN, END, field_reference
from fhir_iastm.records.schemas import SessionRecordSchema
from fhir_iastm.records.vocab import raw_codes, table_values
from tests.strategies import DELETE, EXAMPLES, example, pointer_to_path, valid_records, with_changes

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = record_json_schema()
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
GOOD = sorted(p.stem for p in EXAMPLES.glob("good-*.json"))


def _leaves(errors: Any) -> Any:
    """The errors, with those of an ``anyOf`` (a nullable object) replaced by their branches'."""
    for error in errors:
        if error.context:
            yield from _leaves(error.context)
        else:
            yield error


def schema_errors(record: Any) -> list[str]:
    """Each schema error as the record path it concerns (``treatment_sites[0].laterality``)."""
    paths = []
    for error in _leaves(VALIDATOR.iter_errors(record)):
        path = ""
        for token in error.absolute_path:
            path += f"[{token}]" if isinstance(token, int) else (f".{token}" if path else token)
        if error.validator == "required":  # the missing member, not its parent
            missing = re.search(r"'([^']+)' is a required property", error.message)
            assert missing is not None
            path = f"{path}.{missing.group(1)}" if path else missing.group(1)
        if error.validator == "additionalProperties":  # the unknown member, not its parent
            extra = re.search(r"\('([^']+)' was unexpected\)", error.message)
            assert extra is not None
            path = f"{path}.{extra.group(1)}" if path else extra.group(1)
        paths.append(path)
    return paths


def marshmallow_codes(record: Any) -> list[tuple[str | None, str | None]]:
    with pytest.raises(InvalidRecordError) as info:
        load_record(record)
    return info.value.codes


def test_the_schema_passes_the_meta_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    objects = [("SessionRecord", schema), *schema["$defs"].items()]
    return [(f"{name}.{key}", prop) for name, obj in objects
            for key, prop in obj["properties"].items()]


def test_every_property_is_typed_and_described() -> None:
    properties = _properties(SCHEMA)
    assert len(properties) == 104  # + schema 2.0: visit_kind, iastm_minutes, screening, site_index
    for name, prop in properties:
        alternatives = prop.get("anyOf", [prop])
        assert all("type" in a or "$ref" in a for a in alternatives), name
        assert prop["description"], name


def test_descriptions_name_exactly_the_fields() -> None:
    found: dict[str, list[str]] = {}
    for name, obj in [("SessionRecord", SCHEMA), *SCHEMA["$defs"].items()]:
        found[name] = list(obj["properties"])
    assert {n: list(f) for n, f in FIELDS.items()} == found
    assert set(OBJECTS) == set(FIELDS)


def test_required_lists_are_the_marshmallow_ones() -> None:
    schema = SessionRecordSchema()
    assert SCHEMA["required"] == [k for k, f in schema.fields.items() if f.required]
    assert SCHEMA["$defs"]["Patient"]["required"] == [
        "mrn", "family_name", "given_names", "birth_date", "gender"]


@pytest.mark.parametrize(
    ("object_name", "field", "table"),
    [
        ("Technique", "code", "technique"),
        ("Instrument", "code", "instrument"),
        ("TreatmentSite", "site", "body_site_local"),
        ("TreatmentSite", "laterality", "laterality"),
        ("RangeOfMotion", "joint", "rom_joint"),
        ("RangeOfMotion", "method", "rom_method"),
        ("RangeOfMotion", "timing", "measurement_timing"),
        ("OutcomeMeasure", "instrument", "prom_code"),
        ("AdverseEffect", "type", "adverse_effect"),
        ("AdverseEffect", "severity", "adverse_severity"),
        ("AdjunctTherapy", "type", "adjunct_local"),
        ("Condition", "verification_status", "condition_verification"),
    ],
)
def test_code_lists_are_the_code_tables(object_name: str, field: str, table: str) -> None:
    prop = SCHEMA["$defs"][object_name]["properties"][field]
    values = [v for v in prop["enum"] if v is not None]
    assert values == list(table_values(table))
    assert values == [k for k in raw_codes()[table] if not k.startswith("_")]


def test_motions_are_the_rom_code_table() -> None:
    motions = set(SCHEMA["$defs"]["RangeOfMotion"]["properties"]["motion"]["enum"])
    assert motions == {key.split("-", 1)[1] for key in table_values("rom_code")}


@pytest.mark.parametrize("name", GOOD)
def test_every_good_example_is_valid(name: str) -> None:
    assert schema_errors(example(name)) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records())
def test_every_record_the_service_accepts_is_valid(record: dict[str, Any]) -> None:
    """Never stricter than the service."""
    load_record(record)
    assert schema_errors(record) == []


#: The bad examples: (code the service gives, whether the schema alone refuses the record).
BAD_EXAMPLES = [
    ("bad-01-missing-patient", "E_REQUIRED", True),
    ("bad-02-pain-11", "E_RANGE", True),
    ("bad-03-unknown-laterality", "E_CODE_UNKNOWN", True),
    ("bad-04-end-before-start", "E_PERIOD_ORDER", False),  # two fields: the service only
    ("bad-05-unknown-technique", "E_CODE_UNKNOWN", True),
]


@pytest.mark.parametrize(("name", "code", "refused"), BAD_EXAMPLES)
def test_bad_examples(name: str, code: str, refused: bool) -> None:
    want = json.loads((EXAMPLES / f"{name}.expected.json").read_text())["expected"]["errors"][0]
    path = pointer_to_path(want["path"])
    assert marshmallow_codes(example(name)) == [(code, path)]
    assert (path in schema_errors(example(name))) is refused


def test_bad_06_is_a_store_rule() -> None:
    """A duplicate session_id is refused by the store, not by the record's shape."""
    assert schema_errors(example("bad-06-duplicate-session-id")) == []


#: Field-level defects of good-01: the service's code, and the schema refuses at the same path.
DEFECTS = [
    ("/session_id", 7, "E_TYPE"),
    ("/session_id", "has space", "E_FORMAT"),
    ("/record_version", "2", "E_TYPE"),
    ("/record_version", 0, "E_FORMAT"),
    ("/record_version", True, "E_TYPE"),
    ("/status", "done", "E_CODE_UNKNOWN"),
    ("/schema_version", "3.0", "E_SCHEMA_VERSION"),
    ("/recorded_at", "2025-03-04T10:00:00", "E_FORMAT"),
    ("/notes", "   ", "E_FORMAT"),
    ("/notes", "x" * 4001, "E_FORMAT"),
    ("/unexpected", 1, "E_UNKNOWN_FIELD"),
    ("/patient/gender", "M", "E_CODE_UNKNOWN"),
    ("/patient/given_names", [], "E_REQUIRED"),
    ("/patient/given_names", "Ann", "E_TYPE"),
    ("/patient/birth_date", "03/04/1980", "E_FORMAT"),
    ("/patient/mrn", DELETE, "E_REQUIRED"),
    ("/patient/email", "nobody", "E_FORMAT"),
    ("/clinic/npi", "123456789", "E_NPI_INVALID"),
    ("/clinic", None, "E_REQUIRED"),
    ("/therapist/license_state", "ZZ", "E_CODE_UNKNOWN"),
    ("/session/session_number", 1.5, "E_TYPE"),
    ("/technique/code", "cupping", "E_CODE_UNKNOWN"),
    ("/treatment_sites", [], "E_REQUIRED"),
    ("/treatment_sites/0/site", "shoulder", "E_CODE_UNKNOWN"),
    ("/conditions/0/icd10cm", "m77.11", "E_FORMAT"),
    ("/conditions/0/snomed", "12345", "E_CODE_UNKNOWN"),
    ("/conditions/0/is_primary", "yes", "E_TYPE"),
    ("/conditions/0/onset_date", "2024/11", "E_FORMAT"),
    ("/pain/pre", 11, "E_RANGE"),
    ("/pain/scale", "VAS", "E_CODE_UNKNOWN"),
    ("/instruments/0", "steel", "E_TYPE"),
    ("/adjunct_therapies/0/minutes", 0, "E_FORMAT"),
    ("/billing/cpt_lines/0/code", "9714", "E_FORMAT"),
    ("/billing/cpt_lines/0/units", 100, "E_FORMAT"),
]


@pytest.mark.parametrize(("pointer", "value", "code"), DEFECTS,
                         ids=[f"{p}={v!r:.20}" for p, v, _ in DEFECTS])
def test_field_defects_are_refused_by_both(pointer: str, value: Any, code: str) -> None:
    record = with_changes(example("good-01"), {pointer: value})
    path = pointer_to_path(pointer)
    assert (code, path) in marshmallow_codes(record)
    assert path in schema_errors(record)


def test_null_counts_as_absent_for_optional_fields_only() -> None:
    record = with_changes(example("good-01"), {"/notes": None, "/pain": None})
    load_record(record)
    assert schema_errors(record) == []


def test_docs_record_md_is_current() -> None:
    """Regenerate with scripts/record_reference.py."""
    text = (ROOT / "docs" / "record.md").read_text(encoding="utf-8")
    block = BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END
    assert block == field_reference()


def test_docs_record_md_example_is_a_valid_record() -> None:
    text = (ROOT / "docs" / "record.md").read_text(encoding="utf-8")
    section = text.split("## One full record", 1)[1]
    record = json.loads(section.split("```json\n", 1)[1].split("\n```", 1)[0])
    load_record(record)
    assert schema_errors(record) == []
    assert record == example("good-06")


def test_readme_links_the_record_reference() -> None:
    assert "docs/record.md" in (ROOT / "README.md").read_text(encoding="utf-8")
