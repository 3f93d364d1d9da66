"""``import_service.prepare`` gives exactly what it gave before its speed-ups
(docs/performance.md#prepare): every stored body byte for byte, content hash, index row, record
hash and source key, and every warning and error (code, text, location, order), on the examples,
on generated records and on generated records with a defect each — against digests written by
the code before the speed-ups (``tests/data/prepare_golden.json``, main at 6df4f99). And each
fast path against the plain one it replaced: the listed references against the walk over every
node, a date bound against its fields formatted, the cached NPI check against the Luhn sum.

A deliberate change of the mapping, the index or the rules changes these digests: write them
again with ``.venv/bin/python -m tests.test_prepare_golden --write`` and say why in the commit."""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_iastm.config import Settings
from fhir_iastm.errors import InvalidRecordError, Issue
from fhir_iastm.facade.dates import _fmt
from fhir_iastm.facade.resources import stored_resources
from fhir_iastm.import_service import prepare
from fhir_iastm.mapping import MappingSettings, mapped
from fhir_iastm.records import load_record
from fhir_iastm.records.checks import npi_is_valid
from fhir_iastm.service import mapping_settings
from tests.strategies import valid_records

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/data/prepare_golden.json"
EXAMPLES = sorted((ROOT / "tests/data/examples").glob("*.json"))
GENERATED = 300
#: Every receiver option away from its default.
OPTIONS = MappingSettings(canonical_base="https://example.org/fhir/", include_cpt=True,
                          claim_us_core=True, emit_conditions_for_cancelled=False,
                          performed_as_datetime=True, strip_profiles=True,
                          pain_category=("survey", "exam"))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *head, last = path.split(".")

    def change(body: dict[str, Any]) -> None:
        node: Any = body
        for key in head:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


def _delete(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.pop(key, None)


def _repeat(array: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        items = body.get(array) or []
        if items:
            items.append(copy.deepcopy(items[0]))
    return change


#: One defect (or none) per generated record, in turn: errors, warnings and accepted variants.
DEFECTS: tuple[Callable[[dict[str, Any]], None], ...] = (
    lambda body: None,
    _delete("patient"),
    _set("pain.pre", 11),
    lambda body: _set("session.end", body["session"]["start"])(body),
    _repeat("conditions"),
    _set("therapist.npi", "1234567890"),
    _set("conditions.0.icd10cm", "M77"),
    _set("session.session_number", 99),
    _set("status", "cancelled"),
    _set("iastm_parameters", {"strokes": ["sweep", "sweep"]}),
    _set("recorded_at", "2020-01-01T00:00:00Z"),
    _set("record_version", 3),
    _set("unknown_field", 1),
    _set("conditions.0.laterality", "left"),
    _repeat("treatment_sites"),
    _set("session.end", "2030-01-01T23:00:00+14:00"),
    _set("patient.family_name", "Ñúñez <&> \"O'Brien\" \u2028 \U0001f600"),
    _set("notes", "x" * 5000),
    _set("conditions.0.snomed", "1"),
    _set("pain", {"scale": "NRS-11", "pre": 0.5}),
    _repeat("adjunct_therapies"),
    _set("technique", {"code": "iastm-other"}),
)


def _issue(issue: Issue) -> list[Any]:
    return [issue.severity, issue.code, issue.expression, issue.diagnostics, issue.details,
            issue.record_field]


def _digest(result: Any, warnings: list[Issue]) -> str:
    """A digest of everything ``prepare`` gives for one body."""
    out: dict[str, Any] = {"warnings": [_issue(i) for i in warnings]}
    if isinstance(result, InvalidRecordError):
        out["error"] = [str(result), [_issue(i) for i in result.issues]]
    else:
        record, _, resources, digest = result
        out["record"] = [record.session_id, digest, resources.source_key]
        out["resources"] = [
            [w.resource_type, w.resource_id, str(w.body), w.content_hash, w.shared, w.tokens,
             w.strings, w.dates, w.refs] for w in resources.resources]
    text = json.dumps(out, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def bodies() -> Iterator[tuple[str, Any]]:
    """(label, body): the examples, then generated records with a defect each."""
    for path in EXAMPLES:
        if not path.name.endswith(".expected.json"):
            yield path.name, json.loads(path.read_text(encoding="utf-8"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gen_sessions import records

    for i, body in enumerate(records(GENERATED, "GOLD", per_patient=4, clinics=3, therapists=5)):
        defect = (i // 2) % len(DEFECTS) if i % 2 else 0  # every other record as generated
        DEFECTS[defect](body)
        yield f"generated {i} defect {defect}", body


def digests() -> dict[str, str]:
    """Each body's digest, under the service's settings and under the receiver options."""
    out = {}
    for name, mapping in (("service", mapping_settings(Settings())), ("options", OPTIONS)):
        for label, body in bodies():
            result, warnings = prepare(copy.deepcopy(body), mapping)
            out[f"{name}: {label}"] = _digest(result, warnings)
    return out


def test_prepare_gives_what_it_gave_before_its_speed_ups() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = digests()
    assert list(got) == list(golden)
    assert [k for k in got if got[k] != golden[k]] == []


def test_the_defects_give_errors_warnings_and_accepted_records() -> None:
    kinds = set()
    for label, body in bodies():
        result, warnings = prepare(body, MappingSettings())
        kinds.add("error" if isinstance(result, InvalidRecordError) else "stored")
        kinds.update("warning" for _ in warnings[:1])
        del label
    assert kinds == {"error", "stored", "warning"}


def _both_ways(body: dict[str, Any], mapping: MappingSettings) -> None:
    """The listed references rewritten (``mapped``) give what the walk over every node gives."""
    record = load_record(body)
    walked = stored_resources(mapped(record, mapping)[0], copy_=False)
    bundle, references = mapped(record, mapping)
    listed = stored_resources(bundle, copy_=False, references=references)
    assert json.dumps(listed) == json.dumps(walked)
    assert "urn:uuid:" not in json.dumps(listed)


def test_the_listed_references_are_every_reference_on_the_examples_and_generated() -> None:
    for label, body in bodies():
        if label.startswith("good") or "defect 0" in label:
            for mapping in (MappingSettings(), OPTIONS):
                _both_ways(body, mapping)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records(), st.booleans())
def test_the_listed_references_are_every_reference(body: dict[str, Any], options: bool) -> None:
    _both_ways(body, OPTIONS if options else MappingSettings())


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_bound_is_written_field_by_field(value: datetime) -> None:
    assert _fmt(value) == (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
                           f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}")


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_the_cached_npi_check_is_the_luhn_check(npi: str) -> None:
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        digit = int(ch) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    assert npi_is_valid(npi) is (total % 10 == 0)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.write_text(json.dumps(digests(), indent=0) + "\n", encoding="utf-8")
