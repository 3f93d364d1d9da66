"""Observation.status ``amended`` when a later record version changes a value (issue 10 #9)."""

from __future__ import annotations

import copy
from typing import Any

from fhir_iastm.mapping import to_fhir
from fhir_iastm.mapping.amend import amended_identifiers
from fhir_iastm.records import load_record
from tests.strategies import example

G6 = "good-06"


def _version(data: dict[str, Any], version: int, **edits: Any) -> Any:
    new = copy.deepcopy(data)
    new["record_version"] = version
    for key, value in edits.items():
        new[key] = value
    return load_record(new)


def _statuses(bundle: dict[str, Any]) -> dict[str, str]:
    return {
        e["resource"]["identifier"][0]["value"]: e["resource"]["status"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }


def test_changed_value_is_amended_and_unchanged_stay_final() -> None:
    data = example(G6)
    v1 = load_record(data)
    rom = copy.deepcopy(data["rom"])
    rom[0]["degrees"] += 5
    v2 = _version(data, 2, rom=rom, notes="corrected goniometer reading")
    amended = amended_identifiers(v2, [v1])
    assert len(amended) == 1
    statuses = _statuses(to_fhir(v2, amended=amended))
    assert {k for k, s in statuses.items() if s == "amended"} == amended
    assert {s for k, s in statuses.items() if k not in amended} == {"final"}


def test_stays_amended_while_any_earlier_version_differs() -> None:
    data = example(G6)
    pain = dict(data["pain"], post=data["pain"]["post"] + 1)
    v1, v2 = load_record(data), _version(data, 2, pain=pain)
    v3 = _version(data, 3, pain=pain, notes="only the note changed")
    assert amended_identifiers(v3, [v1, v2]) == amended_identifiers(v2, [v1])
    assert len(amended_identifiers(v3, [v1, v2])) == 1
    # a version that changes no measurement amends nothing; nor do later versions as "earlier"
    assert amended_identifiers(_version(data, 2, notes="x"), [v1]) == frozenset()
    assert amended_identifiers(v1, [v2]) == frozenset()


def test_map_without_history_is_final() -> None:
    assert set(_statuses(to_fhir(load_record(example(G6)))).values()) == {"final"}
