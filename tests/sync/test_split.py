"""Splitting a session's transaction (docs/targets.md#receiver-settings): groups and order."""

from __future__ import annotations

import json
from pathlib import Path

from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.records import load_record
from fhir_iastm.sync.bundle_ops import Systems
from fhir_iastm.sync.split import parts, pending, units

EXAMPLE = sorted((Path(__file__).parents[1] / "data/examples").glob("good-06-*.json"))[0]


def bundle() -> dict:
    return to_fhir(load_record(json.loads(EXAMPLE.read_text())), MappingSettings())


def test_entries_referring_to_each_other_share_a_group_after_what_they_refer_to() -> None:
    entries = bundle()["entry"]
    groups = units(entries)
    assert sorted(e["fullUrl"] for g in groups for e in g) == sorted(e["fullUrl"] for e in entries)
    position = {e["fullUrl"]: i for i, g in enumerate(groups) for e in g}
    encounter = next(e for e in entries if e["resource"]["resourceType"] == "Encounter")
    diagnoses = [d["condition"]["reference"] for d in encounter["resource"]["diagnosis"]]
    assert {position[d] for d in diagnoses} == {position[encounter["fullUrl"]]}
    for entry in entries:  # every reference points at the same or an earlier group
        text = json.dumps(entry["resource"])
        for other in entries:
            if other["fullUrl"] in text:
                assert position[other["fullUrl"]] <= position[entry["fullUrl"]]


def test_parts_respect_the_limit_except_for_a_larger_group() -> None:
    entries = bundle()["entry"]
    for limit in (2, 3, 5, 8):
        chunks = parts(entries, limit)
        biggest = max(len(g) for g in units(entries))
        assert all(len(c) <= max(limit, biggest) for c in chunks)
        assert [e for c in chunks for e in c] == [e for g in units(entries) for e in g]


def test_the_pending_marker_changes_only_the_hash() -> None:
    systems = Systems.of(MappingSettings().base)
    procedure = next(e["resource"] for e in bundle()["entry"]
                     if any(i["system"] == systems.session
                            for i in e["resource"].get("identifier") or []))
    marked = pending(procedure, systems)
    changed = [(a, b) for a, b in zip(procedure["extension"], marked["extension"], strict=True)
               if a != b]
    assert len(changed) == 1
    assert changed[0][1]["valueString"] == "pending:" + changed[0][0]["valueString"]
