"""Search parameter parsing (R4 search.html) and FHIR date ranges: tables of inputs → queries."""

from __future__ import annotations

import pytest

from fhir_iastm.errors import IastmError
from fhir_iastm.facade.cursor import decode_cursor, encode_cursor
from fhir_iastm.facade.dates import date_bounds
from fhir_iastm.facade.parse import MAX_COUNT, parse_search
from fhir_iastm.storage import (
    Chain,
    Condition,
    DateMatch,
    Include,
    RefMatch,
    Sort,
    StringMatch,
    TokenMatch,
)

BASE = "https://ehr.example.org/iastm/fhir"


@pytest.mark.parametrize(("text", "low", "high"), [
    ("2025", "2025-01-01T00:00:00.000000", "2025-12-31T23:59:59.999999"),
    ("2024-02", "2024-02-01T00:00:00.000000", "2024-02-29T23:59:59.999999"),
    ("2025-03-04", "2025-03-04T00:00:00.000000", "2025-03-04T23:59:59.999999"),
    ("2025-03-04T09:00-06:00", "2025-03-04T15:00:00.000000", "2025-03-04T15:00:59.999999"),
    ("2025-03-04T09:00:00-06:00", "2025-03-04T15:00:00.000000", "2025-03-04T15:00:00.999999"),
    ("2025-03-04T23:30:00+05:30", "2025-03-04T18:00:00.000000", "2025-03-04T18:00:00.999999"),
    ("2025-03-04T09:00:00.5Z", "2025-03-04T09:00:00.500000", "2025-03-04T09:00:00.500000"),
])
def test_date_ranges(text: str, low: str, high: str) -> None:
    assert date_bounds(text) == (low, high)


@pytest.mark.parametrize("text", ["2025-13", "2025-02-30", "yesterday", "2025-3-4", "25",
                                  "2025-03-04T25:00Z"])
def test_bad_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        date_bounds(text)


def one(rtype: str, name: str, value: str) -> Condition:
    parsed = parse_search(rtype, [(name, value)], BASE)
    assert not parsed.ignored
    (cond,) = parsed.query.conditions
    return cond


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("code", "http://loinc.org|72514-3",
     Condition("code", "token", (TokenMatch("http://loinc.org", "72514-3"),))),
    ("code", "|72514-3", Condition("code", "token", (TokenMatch("", "72514-3"),))),
    ("code", "http://loinc.org|",
     Condition("code", "token", (TokenMatch("http://loinc.org", None),))),
    ("code", "72514-3,38208-5", Condition("code", "token", (TokenMatch(None, "72514-3"),
                                                            TokenMatch(None, "38208-5")))),
    ("code:not", "72514-3",
     Condition("code", "token", (TokenMatch(None, "72514-3"),), negate=True)),
    ("code:missing", "true", Condition("code", "token", missing=True)),
    ("date", "ge2025-03", Condition("date", "date", (DateMatch(
        "ge", "2025-03-01T00:00:00.000000", "2025-03-31T23:59:59.999999"),))),
    ("patient", "abc", Condition("patient", "reference", (RefMatch(None, "abc"),))),
    ("patient", "Patient/abc", Condition("patient", "reference", (RefMatch("Patient", "abc"),))),
    ("patient", "Patient/abc/_history/3",
     Condition("patient", "reference", (RefMatch("Patient", "abc"),))),
    ("patient", f"{BASE}/Patient/abc",
     Condition("patient", "reference", (RefMatch("Patient", "abc"),))),
    ("patient", "https://other.example.org/fhir/Patient/abc",
     Condition("patient", "reference", (RefMatch(None, "https://other.example.org/fhir/Patient/abc"),))),
    ("subject:Patient", "abc", Condition("subject", "reference", (RefMatch("Patient", "abc"),))),
    ("patient.identifier", "sys|MRN-1", Condition("patient", "reference", (Chain(
        "Patient", Condition("identifier", "token", (TokenMatch("sys", "MRN-1"),))),))),
    ("_id", "a,b", Condition("_id", "id", (TokenMatch(None, "a"), TokenMatch(None, "b")))),
    ("_lastUpdated", "gt2026-01-01", Condition("_lastUpdated", "lastUpdated", (DateMatch(
        "gt", "2026-01-01T00:00:00.000000", "2026-01-01T23:59:59.999999"),))),
])
def test_procedure_conditions(name: str, value: str, expected: Condition) -> None:
    assert one("Procedure", name, value) == expected


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("family", "Ngu", StringMatch("NGU", "start")),
    ("family", "Nguyên", StringMatch("NGUYEN", "start")),
    ("family:exact", "Nguyen", StringMatch("Nguyen", "exact")),
    ("given:contains", "om", StringMatch("OM", "contains")),
])
def test_patient_strings(name: str, value: str, expected: StringMatch) -> None:
    assert one("Patient", name, value).matches == (expected,)


def test_escaped_comma_is_a_literal_comma() -> None:
    assert one("Patient", "family", r"a\,b").matches == (StringMatch("A,B"),)


def test_result_parameters() -> None:
    parsed = parse_search("Procedure", [
        ("_count", "9999"), ("_sort", "-date"), ("_include", "Procedure:patient"),
        ("_total", "none"), ("_elements", "status,code"), ("status", "")], BASE)
    q = parsed.query
    assert q.count == MAX_COUNT
    assert q.sort == Sort("date", True)
    assert not q.total
    assert q.includes == (Include("Procedure", "patient"),)
    assert q.conditions == ()
    assert parsed.elements == ("status", "code")
    rev = parse_search("Patient", [("_revinclude", "Procedure:patient")], BASE).query
    assert rev.revincludes == (Include("Procedure", "patient"),)
    assert parse_search("Procedure", [("_summary", "count")], BASE).query.count == 0


def test_unknown_parameters_are_collected_not_guessed() -> None:
    parsed = parse_search("Procedure", [("foo", "1"), ("status", "completed")], BASE)
    assert parsed.ignored == ["foo"]
    assert len(parsed.query.conditions) == 1


@pytest.mark.parametrize(("rtype", "name", "value"), [
    ("Procedure", "date", "2025-13"),
    ("Procedure", "date", "xx2025"),
    ("Procedure", "_count", "-1"),
    ("Procedure", "_count", "x"),
    ("Procedure", "_sort", "code"),
    ("Procedure", "_sort", "date,_id"),
    ("Procedure", "code:contains", "x"),
    ("Procedure", "code:missing", "maybe"),
    ("Procedure", "patient", "Practitioner/1"),
    ("Procedure", "patient", "not a reference"),
    ("Procedure", "_include", "Procedure:code"),
    ("Procedure", "_include", "Observation:patient"),
    ("Procedure", "_revinclude", "Observation:part-of:Immunization"),
    ("Patient", "_revinclude", "Observation:part-of"),
    ("Procedure", "_summary", "text"),
    ("Procedure", "_total", "some"),
    ("Procedure", "status.identifier", "x"),
    ("Procedure", "patient.organization.name", "x"),
    ("Procedure", "_cursor", "garbage!"),
    ("Procedure", "code", "a,,b"),
])
def test_malformed_values_name_the_parameter(rtype: str, name: str, value: str) -> None:
    with pytest.raises(IastmError) as info:
        parse_search(rtype, [(name, value)], BASE)
    assert info.value.http_status == 400
    assert name.split(":")[0].split(".")[0] in str(info.value)


def test_cursors_are_bound_to_their_sort() -> None:
    token = encode_cursor(Sort("date"), ("2025-01-01T00:00:00.000000", 7))
    assert decode_cursor(token, Sort("date")) == ("2025-01-01T00:00:00.000000", 7)
    with pytest.raises(IastmError, match="another _sort"):
        decode_cursor(token, Sort("date", True))
