"""SMART system scopes: v2 permission strings, v1 equivalents, grants and checks."""

from __future__ import annotations

import pytest

from fhir_iastm.smart.scopes import ScopeError, allows, grant, parse_scope, parse_scopes


@pytest.mark.parametrize(("text", "rtype", "perms"), [
    ("system/*.rs", "*", "rs"),
    ("system/Patient.r", "Patient", "r"),
    ("system/Observation.cruds", "Observation", "cruds"),
    ("system/*.read", "*", "rs"),
    ("system/Patient.write", "Patient", "cud"),
    ("system/*.*", "*", "cruds"),
])
def test_scopes_parse_to_type_and_permissions(text: str, rtype: str, perms: str) -> None:
    scope = parse_scope(text)
    assert (scope.resource_type, scope.permissions) == (rtype, frozenset(perms))


@pytest.mark.parametrize("text", [
    "patient/*.rs", "user/Patient.read", "system/*.sr", "system/*.rr", "system/*.x",
    "system/Patient.rs?category=vital-signs", "launch", "openid", "system/patient.rs", "system/*.",
])
def test_scopes_outside_the_grammar_are_refused(text: str) -> None:
    with pytest.raises(ScopeError, match="scope"):
        parse_scope(text)


def test_a_grant_keeps_only_requested_scopes_a_registered_scope_covers() -> None:
    registered = parse_scopes("system/Patient.rs system/Observation.read")
    requested = parse_scopes("system/Patient.r system/*.rs system/Observation.s "
                             "system/Encounter.rs system/Patient.cruds")
    assert [s.text for s in grant(requested, registered)] == [
        "system/Patient.r", "system/Observation.s"]


def test_v1_and_v2_are_interchangeable_in_checks() -> None:
    granted = parse_scopes("system/*.read")
    assert allows(granted, "Encounter", "rs")
    assert not allows(granted, "Encounter", "c")
    only_read = parse_scopes("system/Patient.r")
    assert allows(only_read, "Patient", "r")
    assert not allows(only_read, "Patient", "s")
    assert not allows(only_read, "Patient", "rs")
    assert not allows(only_read, "Observation", "r")
    # permissions of several scopes on one type add up
    assert allows(parse_scopes("system/Patient.r system/Patient.s"), "Patient", "rs")
    assert not allows(parse_scopes("system/Patient.r system/Observation.s"), "Patient", "rs")


def test_repeated_scopes_count_once() -> None:
    assert [s.text for s in parse_scopes("system/*.rs  system/*.rs")] == ["system/*.rs"]
