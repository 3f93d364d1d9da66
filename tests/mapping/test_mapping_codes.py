"""The terminology file and the code tables (docs/codes.md, docs/codes.md#the-code-table)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_iastm.errors import MappingError
from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.mapping.codes import STANDARD_SYSTEMS, CodeTable, raw_data, reverse, tables
from fhir_iastm.mapping.roundtrip import canonical_for_roundtrip
from tests.mapping.support import BASE, GOOD, good

STATUSES = {"verified", "caveat", "unverified", "local"}


def _entries() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, table in raw_data().items():
        if name.startswith("_"):
            continue
        for value, entry in table.items():
            if value.startswith("_"):
                continue
            for item in entry if isinstance(entry, list) else [entry]:
                yield name, value, item


def _codings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "system" in node and "code" in node and "value" not in node:
            yield node
        for value in node.values():
            yield from _codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _codings(value)


def _all_outputs() -> Iterator[dict[str, Any]]:
    for name in GOOD:
        for settings in (MappingSettings(), MappingSettings(include_cpt=True, claim_us_core=True)):
            yield to_fhir(good(name), settings)


def test_every_entry_is_complete() -> None:
    for name, value, entry in _entries():
        assert set(entry) >= {"system", "code", "status", "source"}, (name, value)
        # a display is sent only when sourced; otherwise the entry says why there is none
        assert ("display" in entry) != bool(entry.get("display_omitted")), (name, value)
        assert entry["status"] in STATUSES, (name, value)
        assert entry["code"], (name, value)
        assert entry["source"], (name, value)
        local = entry["system"].startswith("{CANON}/CodeSystem/")
        assert (entry["status"] == "local") == local, (name, value)


def test_every_table_names_its_fallback() -> None:
    for name, table in tables(BASE).by_name.items():
        assert table.fallback in ("error", "omit"), name


def test_emitted_standard_codes_are_in_the_file_and_never_unverified() -> None:
    known = {(e["system"], e["code"]): e["status"] for _, _, e in _entries()}
    for bundle in _all_outputs():
        for coding in _codings(bundle):
            system = coding["system"]
            from_record = ("http://hl7.org/fhir/sid/icd-10-cm", "http://www.ama-assn.org/go/cpt")
            if system in STANDARD_SYSTEMS and system not in from_record:
                # ICD-10-CM codes come from the record, validated by simple-icd-10-cm; CPT
                # codes are the record's billing lines (docs/clinical.md#billing).
                assert (system, coding["code"]) in known, coding
                assert known[(system, coding["code"])] != "unverified", coding


def test_never_emit_codes_stay_out_of_every_output() -> None:
    banned = {
        (e["system"], e["code"])
        for e in raw_data()["never_emit"].values()
        if isinstance(e, dict) and "code" in e
    }
    assert ("http://snomed.info/sct", "81022004") in banned
    for bundle in _all_outputs():
        emitted = {(c["system"], c["code"]) for c in _codings(bundle)}
        assert not emitted & banned


def test_cpt_never_has_a_display() -> None:
    for bundle in _all_outputs():
        for coding in _codings(bundle):
            if coding["system"] == "http://www.ama-assn.org/go/cpt":
                assert "display" not in coding


def test_reverse_tables_invert_or_list_their_many_to_one_entries() -> None:
    t = tables(BASE)
    for name, table in t.by_name.items():
        if name in ("fixed", "never_emit"):
            continue
        back = reverse(table, t.many_to_one.get(name, {}))
        for value, codings in table.items():
            key = (codings[0]["system"], codings[0]["code"])
            if back[key] != value:
                assert value in t.many_to_one[name][key[1]], (name, value)
    assert t.many_to_one["body_site_snomed"]["68367000"] == ("hamstring", "thigh")
    # the many-to-one SNOMED sites round-trip through the always-emitted local coding
    local = reverse(t["body_site_local"], {})
    assert local[(f"{BASE}/CodeSystem/iastm-body-site", "thigh")] == "thigh"


def test_undeclared_collision_is_detected() -> None:
    coding = {"system": "s", "code": "c"}
    with pytest.raises(ValueError, match="maps back to"):
        reverse(CodeTable("demo", "error", {"a": (coding,), "b": (coding,)}), {})


def test_unmapped_value_names_table_and_value() -> None:
    with pytest.raises(MappingError) as info:
        tables(BASE)["technique"].coding("reiki")
    assert "'technique'" in str(info.value)
    assert "'reiki'" in str(info.value)
    assert info.value.issues[0].details == "E_CODE_UNKNOWN"
    assert tables(BASE)["body_location_qualifier"].codings("knee") == []  # fallback omit


def test_unmapped_rom_combination_raises_mapping_error() -> None:
    from dataclasses import replace

    record = good("good-06")
    odd = replace(record, rom=(replace(record.rom[0], motion="pronation"),))
    with pytest.raises(MappingError, match="'rom_code'.*'knee-pronation'"):
        to_fhir(odd)


def test_codes_are_copied_not_shared() -> None:
    bundle = to_fhir(good("good-03"))
    json.dumps(bundle)
    bundle["entry"][3]["resource"]["class"]["code"] = "MUTATED"
    again = to_fhir(good("good-03"))
    assert again["entry"][3]["resource"]["class"]["code"] == "AMB"
    assert canonical_for_roundtrip(good("good-03"))  # sanity: record untouched


def test_icd10cm_displays_are_the_tabular_titles() -> None:
    from fhir_iastm.records.icd10cm import icd_title

    seen = 0
    for bundle in _all_outputs():
        for coding in _codings(bundle):
            if coding["system"] == "http://hl7.org/fhir/sid/icd-10-cm":
                assert coding["display"] == icd_title(coding["code"]), coding
                seen += 1
    assert seen > 0
    assert icd_title("M77.11") == "Lateral epicondylitis, right elbow"


def test_unsourced_patellar_tendon_display_is_not_sent() -> None:
    for bundle in _all_outputs():
        for coding in _codings(bundle):
            if coding.get("code") == "18033002":
                assert "display" not in coding
