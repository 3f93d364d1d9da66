"""The element table (fhir_iastm/mapping/elements.py): it covers every element the mapper emits,
every row is emitted, docs/mapping.md is generated from it, and the tracer reads it."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_iastm.mapping import to_fhir
from fhir_iastm.mapping.elements import ELEMENTS, KINDS, kind_of, rows_of, slice_name
from fhir_iastm.mapping.elements_doc import render
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.mapping.trace import record_field, table_path
from fhir_iastm.records import load_record
from tests.mapping.support import EXAMPLES, GOOD

ROOT = Path(__file__).parents[2]
GOLDEN = sorted((ROOT / "tests/data/golden").glob("*.bundle.json"))
SETTINGS = (
    MappingSettings(),
    MappingSettings(include_cpt=True, claim_us_core=True),
    MappingSettings(performed_as_datetime=True, strip_profiles=True),
    MappingSettings(emit_conditions_for_cancelled=False),
)


def _rich_record() -> dict[str, Any]:
    """good-02 with what no example carries: a PSFS measure with items, patient contacts."""
    data = json.loads((EXAMPLES / f"{GOOD[1]}.json").read_text("utf-8"))
    data["patient"].update(
        phone="+1-217-555-0199",
        email="patient@example.org",
        address={"line": ["1 Main St"], "city": "Salem", "state": "IL", "postal_code": "62701"},
    )
    # an expected but moderate effect stays a complication (with its expected flag)
    data["adverse_effects"] = [
        {"type": "bruising", "severity": "moderate", "site_index": 0, "expected": True}
    ]
    data["outcome_measures"].append(
        {"instrument": "PSFS", "score": 4.5, "items": [{"activity": "gripping", "score": 4},
                                                       {"activity": "lifting", "score": 5}]}
    )
    return data


def _v2_record() -> dict[str, Any]:
    """good-01 as a schema 2.0 record: visit kind, IASTM minutes."""
    data = json.loads((EXAMPLES / f"{GOOD[0]}.json").read_text("utf-8"))
    data.update(schema_version="2.0", visit_kind="treatment")
    data["session"]["iastm_minutes"] = 15
    data["screening"] = {
        "performed_at": data["session"]["start"], "anticoagulant_therapy": False,
        "skin_intact": True, "consent_obtained": True, "findings": ["hematoma"],
        "override_reason": "hematoma on the other arm",
    }  # fmt: skip
    data["conditions"][0]["site_index"] = 0
    data["iastm_parameters"] = {
        "strokes": ["sweeping", "fanning"], "pressure": "moderate", "tolerance": "well-tolerated"
    }  # fmt: skip
    return data


def corpus() -> Iterator[tuple[str, dict[str, Any]]]:
    """(case, resource) for every resource of the golden Bundles and of the mapped examples."""
    for path in GOLDEN:
        for entry in json.loads(path.read_text("utf-8"))["entry"]:
            yield path.name, entry["resource"]
    records = [json.loads((EXAMPLES / f"{g}.json").read_text("utf-8")) for g in GOOD]
    for i, data in enumerate([*records, _rich_record(), _v2_record()]):
        for settings in SETTINGS:
            for entry in to_fhir(load_record(data), settings)["entry"]:
                yield f"record {i}", entry["resource"]


def leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Table paths (sliced items named as the tracer names them) of every primitive value."""
    if isinstance(node, dict):
        for key, value in node.items():
            is_url = key == "url" and path and path[-1].startswith("extension")
            if not is_url and not (key == "resourceType" and not path):
                yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for item in node:
            head, name = path[:-1], path[-1]
            sliced = None if name == "identifier" and head else slice_name(name, item)
            yield from leaves(item, (*head, f"{name}:{sliced}" if sliced else name))
    else:
        yield path


def _required(leaf: tuple[str, ...]) -> tuple[str, ...]:
    """The part of a leaf path that must have a row: through its last extension, else the top."""
    ext = [i for i, part in enumerate(leaf) if part.startswith("extension")]
    return leaf[: ext[-1] + 1] if ext else leaf[:1]


def _emitted() -> dict[str, set[tuple[str, ...]]]:
    found: dict[str, set[tuple[str, ...]]] = {}
    for _case, container in corpus():
        # a contained resource (Encounter.contained Conditions) is checked as its own kind
        inner = container.get("contained", [])
        outer = {k: v for k, v in container.items() if k != "contained"}
        for resource in [outer, *inner]:
            kind = kind_of(resource)
            assert kind is not None, resource.get("resourceType")
            found.setdefault(kind[0].name, set()).update(leaves(resource))
        if inner:
            found.setdefault(str(kind_of(outer)[0].name), set()).add(("contained",))
    return found


EMITTED = _emitted()


def test_every_kind_is_emitted_and_every_row_names_a_known_kind() -> None:
    assert set(EMITTED) == {k.name for k in KINDS}
    assert {e.kind for e in ELEMENTS} == {k.name for k in KINDS}


def test_every_emitted_element_has_a_row() -> None:
    missing = []
    for kind, paths in EMITTED.items():
        rows = [tuple(e.path.split(".")) for e in rows_of(kind)]
        for leaf in sorted(paths):
            need = _required(leaf)
            if not any(r[: len(need)] == need and leaf[: len(r)] == r for r in rows):
                missing.append(f"{kind}: {'.'.join(leaf)} (needs a row for {'.'.join(need)})")
    assert not missing, "\n".join(missing)


def test_every_row_is_emitted() -> None:
    dead = [
        f"{e.kind}: {e.path}"
        for e in ELEMENTS
        if not any(
            leaf[: len(parts)] == parts
            for parts in [tuple(e.path.split("."))]
            for leaf in EMITTED.get(e.kind, ())
        )
    ]
    assert not dead, dead


def test_rows_are_unique_and_positional_indices_match_the_record_templates() -> None:
    keys = [(e.kind, e.path) for e in ELEMENTS]
    assert len(keys) == len(set(keys))
    for e in ELEMENTS:
        kind = next(k for k in KINDS if k.name == e.kind)
        for field in e.record:
            own = field.startswith(kind.record) and kind.selector  # keyed by the role
            positional = field.count("[]") - (1 if own else 0)
            assert positional <= len(e.index), (e.kind, e.path, field)


def test_code_tables_named_by_rows_exist() -> None:
    codes = json.loads((ROOT / "fhir_iastm/data/codes.json").read_text("utf-8"))
    for e in ELEMENTS:
        for table in (t.strip() for t in (e.table or "").split(",") if t.strip()):
            name, _, key = table.partition(".")
            assert name in codes, (e.path, table)
            assert not key or key in codes[name], (e.path, table)


def test_docs_mapping_md_is_generated_from_the_table() -> None:
    committed = (ROOT / "docs/mapping.md").read_text("utf-8")
    assert committed == render(), "docs/mapping.md is stale: run scripts/gen_docs.py"


def _mapped(name: str) -> dict[str, Any]:
    data = json.loads((EXAMPLES / f"{name}.json").read_text("utf-8"))
    return to_fhir(load_record(data))


def _by_role(bundle: dict[str, Any], role: str) -> dict[str, Any]:
    return next(
        e["resource"]
        for e in bundle["entry"]
        if any(str(i.get("value", "")).endswith(role) for i in e["resource"].get("identifier", []))
    )


@pytest.mark.parametrize(
    ("role", "expression", "rule", "expected"),
    [
        ("/procedure", "Procedure.bodySite[0]", None, "treatment_sites[0]"),
        ("/procedure", "Procedure.bodySite[0].extension[0].valueCodeableConcept", None,
         "treatment_sites[0].laterality"),
        ("/obs/effect/petechiae/plantar-fascia-right", "Observation.valueCodeableConcept", None,
         "adverse_effects.where(type='petechiae').severity"),
        ("/procedure", "Procedure", "iastm-proc-8", "adverse_effects"),
        ("/procedure", "Procedure", "card:Procedure.subject", "patient"),
        ("/procedure", "Procedure", "slice:Procedure.extension:session-number",
         "session.session_number"),
        ("/procedure", "Procedure.usedCode[0]", None, "instruments[0].code"),
        ("/condition/DX-100512-01", "Condition.code.coding[0]", None,
         "conditions.where(condition_id='DX-100512-01').icd10cm"),
        ("/condition/DX-100512-01", "Condition.code.coding[1].code", None,
         "conditions.where(condition_id='DX-100512-01').snomed"),
        ("/condition/DX-100512-01", "Condition", "con-5",
         "conditions.where(condition_id='DX-100512-01').clinical_status"),
        ("/obs/pain-post", "Observation.valueQuantity.value", None, "pain.post"),
        ("/obs/pain-pre", "Observation.effectiveDateTime", None, "session.start"),
        ("/adjunct/stretching", "Procedure.extension[2].valueDuration", None,
         "adjunct_therapies.where(type='stretching').minutes"),
    ],
)  # fmt: skip
def test_trace_reads_the_table(role: str, expression: str, rule: str | None, expected: str) -> None:
    resource = _by_role(_mapped(GOOD[2]), role)
    assert record_field(resource, expression, rule) == expected


def test_trace_names_extension_items_by_url() -> None:
    proc = _by_role(_mapped(GOOD[2]), "/procedure")
    path, indexes = table_path(proc, "Procedure.bodySite[0].extension[0]")
    assert path == ["bodySite", "extension:mcode-laterality-qualifier"]
    assert indexes == {"bodySite": 0, "extension": 0}


def test_trace_of_a_resource_we_do_not_map_is_none() -> None:
    assert record_field({"resourceType": "Basic"}, "Basic.code", None) is None
    assert record_field(copy.deepcopy(_by_role(_mapped(GOOD[2]), "/procedure")), None) is None


def test_rom_role_groups_fill_the_selector() -> None:
    rom = _by_role(_mapped(GOOD[5]), "/obs/rom/knee-flexion-right-active-pre")
    field = record_field(rom, "Observation.valueQuantity", None)
    assert field is not None
    assert re.fullmatch(r"rom\.where\(joint='knee' and motion='flexion' .*\)\.degrees", field)
