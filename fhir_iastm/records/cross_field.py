"""The rules of docs/validation.md#record-errors that read more than one field
(docs/decisions.md#d17, #d18, #d19, #d21).

Every rule runs on the submitted JSON (a mapping) and only when each field it reads passed its
own check (docs/decisions.md#d21): ``bad`` holds the paths that already have an issue, and a rule
whose
input is bad, or absent, stays silent. So one defect yields one issue.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from fhir_iastm.errors import Issue
from fhir_iastm.records.fields import make_issue
from fhir_iastm.records.icd10cm import icd_side
from fhir_iastm.records.vocab import (
    ABSOLUTE_CONTRAINDICATIONS,
    OUTCOME_INSTRUMENTS_V1,
    SNOMED_BY_ICD_PREFIX,
)

#: What a cancelled session must not carry (docs/decisions.md#d21).
_NOT_WHEN_CANCELLED = (
    "session.end", "session.duration_min", "session.iastm_minutes", "instruments",
    "adjunct_therapies", "pain", "rom", "outcome_measures", "adverse_effects",
)  # fmt: skip

_ROM_KEY = ("joint", "motion", "laterality", "mode", "timing")

#: Fields of record contract 2.0 (docs/clinical.md#record-contract-version-2).
V2_FIELDS = ("visit_kind", "session.iastm_minutes", "screening", "iastm_parameters")


def snomed_for_icd(code: str) -> str | None:
    """The one SNOMED concept that may accompany ``code`` (docs/decisions.md#d19), None if there is
    none."""
    for prefix in sorted(SNOMED_BY_ICD_PREFIX, key=len, reverse=True):
        if code.startswith(prefix):
            return SNOMED_BY_ICD_PREFIX[prefix]
    return None


@cache
def _parts(path: str) -> tuple[tuple[str, int], ...]:
    """``conditions[0].icd10cm`` -> (("conditions", -1), ("0", 0), ("icd10cm", -1)): each part
    with its array index (-1: not digits)."""
    return tuple((part, int(part) if part.isdecimal() else -1)
                 for part in re.findall(r"[^.\[\]]+", path))


class _View:
    """Read access to the raw record that hides any value whose path already has an issue."""

    def __init__(self, data: Mapping[str, Any], bad: set[str]) -> None:
        self.data, self.bad = data, bad

    def _blocked(self, path: str, *, descendants: bool) -> bool:
        for b in self.bad:
            if b == "" or b == path or path.startswith((b + ".", b + "[")):
                return True
            if descendants and b.startswith((path + ".", path + "[")):
                return True
        return False

    def get(self, path: str, *, whole: bool = True) -> Any:
        """The value at ``path`` or None when absent or (``whole``: anywhere inside it) bad."""
        if self.bad and self._blocked(path, descendants=whole):
            return None
        return self.raw(path)

    def raw(self, path: str) -> Any:
        """The value at ``path`` whatever its checks said (for "is it there at all")."""
        value: Any = self.data
        for part, index in _parts(path):
            if value.__class__ is dict or isinstance(value, Mapping):  # a dict: no ABC check
                value = value.get(part)
            elif index >= 0 and isinstance(value, list | tuple) and index < len(value):
                value = value[index]
            else:
                return None
        return value

    def keys(self, array: str, names: Sequence[str]) -> list[tuple[str, tuple[Any, ...]]]:
        """(path, key) of each element of the array at ``array`` (if the array is sound): the
        key is ``get(f"{path}.{name}")`` of each name, or ``(get(path),)`` without names. With
        no bad path, read straight from the elements (what ``raw`` would read)."""
        if self.bad:
            return [(path, tuple(self.get(f"{path}.{n}") for n in names) if names
                     else (self.get(path),)) for _, path in self.items(array)]
        value = self.raw(array)
        if not isinstance(value, list | tuple):
            return []
        return [(f"{array}[{i}]", _fields(item, names) if names else (item,))
                for i, item in enumerate(value)]

    def items(self, path: str) -> list[tuple[int, str]]:
        """(index, path) of each element of the array at ``path`` (if the array is sound)."""
        value = self.get(path, whole=False)
        if not isinstance(value, list | tuple):
            return []
        return [(i, f"{path}[{i}]") for i in range(len(value))]


def _fields(item: Any, names: Sequence[str]) -> tuple[Any, ...]:
    """Each named value of an element (None for all of them when it is not an object)."""
    if item.__class__ is dict or isinstance(item, Mapping):
        return tuple(item.get(n) for n in names)
    return (None,) * len(names)


def _status_rules(v: _View) -> Iterator[Issue]:
    status = v.get("status")
    if status is None:
        return
    if status != "completed" and v.raw("status_reason") is None:
        yield make_issue("E_REQUIRED", "status_reason", f"status_reason is required when {status}")
    if status == "completed" and v.get("status_reason") is not None:
        yield make_issue(
            "E_STATUS_CONFLICT", "status_reason", "a completed session carries no status_reason"
        )
    session = v.get("session", whole=False)
    if status != "cancelled" and isinstance(session, Mapping) and session.get("end") is None:
        yield make_issue("E_REQUIRED", "session.end", f"session.end is required when {status}")
    pain = v.get("pain", whole=False)
    if status == "completed" and isinstance(pain, Mapping) and pain.get("pre") is None:
        yield make_issue("E_REQUIRED", "pain.pre", "pain.pre is required for a completed session")
    if status == "cancelled":
        for path in _NOT_WHEN_CANCELLED:
            if v.get(path) not in (None, [], ()):
                yield make_issue(
                    "E_STATUS_CONFLICT", path, f"a cancelled session carries no {path}"
                )


def _version_rules(v: _View) -> Iterator[Issue]:
    """2.0 fields need schema_version 2.0; a completed 2.0 session states its IASTM minutes,
    which with the adjuncts' minutes fit in the visit."""
    version = v.get("schema_version")
    if version == "1.0":
        for path in V2_FIELDS:
            if v.raw(path) is not None:
                msg = f"{path} is a field of schema_version 2.0 (this record says 1.0)"
                yield make_issue("E_SCHEMA_VERSION", path, msg)
        for _, path in v.items("conditions"):
            if v.raw(f"{path}.site_index") is not None:
                msg = "site_index is a field of schema_version 2.0 (this record says 1.0)"
                yield make_issue("E_SCHEMA_VERSION", f"{path}.site_index", msg)
        for _, path in v.items("outcome_measures"):
            instrument = v.get(f"{path}.instrument")
            if instrument is not None and instrument not in OUTCOME_INSTRUMENTS_V1:
                msg = f"{instrument} is an instrument of schema_version 2.0 (this record says 1.0)"
                yield make_issue("E_SCHEMA_VERSION", f"{path}.instrument", msg)
    if version != "2.0" or v.get("status") != "completed":
        return
    session = v.get("session", whole=False)
    minutes = v.get("session.iastm_minutes")
    if isinstance(session, Mapping) and v.raw("session.iastm_minutes") is None:
        msg = "session.iastm_minutes is required for a completed session (schema_version 2.0)"
        yield make_issue("E_REQUIRED", "session.iastm_minutes", msg)
    start, end = v.get("session.start"), v.get("session.end")
    adjuncts = [v.get(f"{p}.minutes") for _, p in v.items("adjunct_therapies")]
    if minutes is None or start is None or end is None or None in adjuncts:
        return
    visit = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 60
    total = minutes + sum(adjuncts)
    if visit > 0 and total > visit:
        msg = f"IASTM {minutes} + adjunct {total - minutes} min exceed the {visit:g}-min visit"
        yield make_issue("E_DURATION_MISMATCH", "session.iastm_minutes", msg)


def _technique_rules(v: _View) -> Iterator[Issue]:
    technique = v.get("technique", whole=False)
    other = v.get("technique.code") == "iastm-other"
    if other and isinstance(technique, Mapping) and technique.get("text") is None:
        yield make_issue(
            "E_REQUIRED", "technique.text", "technique.text is required for iastm-other"
        )


def _session_rules(v: _View) -> Iterator[Issue]:
    start, end = v.get("session.start"), v.get("session.end")
    if start is not None and end is not None:
        minutes = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 60
        duration = v.get("session.duration_min")
        if minutes <= 0:
            msg = f"session.end is not after session.start ({-minutes:g} min before it)"
            yield make_issue("E_PERIOD_ORDER", "session.end", msg)
        elif duration is not None and abs(duration - minutes) > 1:
            yield make_issue(
                "E_DURATION_MISMATCH",
                "session.duration_min",
                f"duration_min {duration} differs from end - start = {minutes:g} min by over 1",
            )
    number, planned = v.get("session.session_number"), v.get("session.planned_sessions")
    if number is not None and planned is not None and number > planned:
        yield make_issue(
            "W_PLAN_EXCEEDED",
            "session.session_number",
            f"session {number} exceeds the {planned} planned sessions (plan extended?)",
        )


#: A session longer than this is implausible for IASTM (a warning, W_LONG_SESSION).
LONG_SESSION_HOURS = 3
#: PSFS score = mean of the item scores, to this tolerance (E_SCORE_MISMATCH).
PSFS_TOLERANCE = 0.05


def _plausibility_rules(v: _View) -> Iterator[Issue]:
    start, end = v.get("session.start"), v.get("session.end")
    if start is not None and end is not None:
        hours = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600
        if hours > LONG_SESSION_HOURS:
            msg = f"the session lasts {hours:.1f} h (over {LONG_SESSION_HOURS} h): check the times"
            yield make_issue("W_LONG_SESSION", "session.end", msg)
    recorded = v.get("recorded_at")
    completed = v.get("status") == "completed" and start is not None and recorded is not None
    if completed and datetime.fromisoformat(recorded) < datetime.fromisoformat(start):
        msg = "a completed session is recorded before it started (recorded_at < session.start)"
        yield make_issue("W_RECORDED_BEFORE_START", "recorded_at", msg)
    for _, path in v.items("outcome_measures"):
        if v.get(f"{path}.instrument") != "PSFS":
            continue
        score, items = v.get(f"{path}.score"), v.get(f"{path}.items")
        if score is None or not items:
            continue
        mean = sum(item["score"] for item in items) / len(items)
        if abs(score - mean) > PSFS_TOLERANCE:
            msg = f"PSFS score {score:g} is not the mean of its {len(items)} items ({mean:.2f})"
            yield make_issue("E_SCORE_MISMATCH", f"{path}.score", msg)


def _screening_rules(v: _View) -> Iterator[Issue]:
    """A finding is listed once; a completed session needs consent and, with an absolute
    contraindication, an override reason (docs/clinical.md#screening)."""
    yield from _duplicates(v, "screening.findings", (), str, "finding")
    if v.get("status") != "completed" or not isinstance(v.raw("screening"), Mapping):
        return
    if v.get("screening.consent_obtained") is False:
        msg = "a completed session needs the patient's consent (screening.consent_obtained false)"
        yield make_issue("E_CONSENT_MISSING", "screening.consent_obtained", msg)
    if v.raw("screening.override_reason") is not None:
        return
    found: dict[str, str] = {}
    for _, path in v.items("screening.findings"):
        found.setdefault(v.get(path), path)
    for finding, path in found.items():
        if finding in ABSOLUTE_CONTRAINDICATIONS:
            msg = (
                f"{finding} is an absolute contraindication to IASTM: a completed session"
                " needs screening.override_reason"
            )
            yield make_issue("E_CONTRAINDICATION", path, msg)


def _site_sides(v: _View) -> set[str] | None:
    """The lateralities of all treatment sites, None when any of them is unreadable."""
    sides = set()
    for _, path in v.items("treatment_sites"):
        side = v.get(f"{path}.laterality")
        if side is None:
            return None
        sides.add(side)
    return sides or None


def _laterality_issue(v: _View, path: str, sides: set[str] | None) -> Issue | None:
    side, icd = v.get(f"{path}.laterality"), v.get(f"{path}.icd10cm")
    if side is None or icd is None:
        return None
    stated = icd_side(icd)
    if stated == "unspecified" and side != "not-applicable":
        msg = f"{icd} is an unspecified-side code but laterality is {side}; code the side"
        return make_issue("E_LATERALITY_CONFLICT", f"{path}.laterality", msg)
    if stated not in (None, "unspecified") and side != stated:
        msg = f"{icd} states {stated} but laterality is {side}"
        return make_issue("E_LATERALITY_CONFLICT", f"{path}.laterality", msg)
    if sides is None or side == "not-applicable":
        return None
    covered = (
        bool(sides & {side, "bilateral"})
        if side != "bilateral"
        else "bilateral" in sides or {"left", "right"} <= sides
    )
    if covered:
        return None
    msg = f"no treatment site on the {side} side (sites: {', '.join(sorted(sides))})"
    return make_issue("E_LATERALITY_CONFLICT", f"{path}.laterality", msg)


def _condition_rules(v: _View) -> Iterator[Issue]:
    sides = _site_sides(v)
    primaries = []
    for _, path in v.items("conditions"):
        verification = v.get(f"{path}.verification_status")
        clinical = f"{path}.clinical_status"
        if verification == "entered-in-error" and v.get(clinical) is not None:
            msg = "an entered-in-error condition carries no clinical_status (R4 con-5)"
            yield make_issue("E_STATUS_CONFLICT", clinical, msg)
        elif verification not in (None, "entered-in-error") and v.raw(clinical) is None:
            msg = f"clinical_status is required when verification_status is {verification}"
            yield make_issue("E_REQUIRED", clinical, msg)
        issue = _laterality_issue(v, path, sides)
        if issue is not None:
            yield issue
        icd, snomed = v.get(f"{path}.icd10cm"), v.get(f"{path}.snomed")
        if icd is not None and snomed is not None and snomed_for_icd(icd) != snomed:
            expected = snomed_for_icd(icd)
            hint = f"expected {expected}" if expected else "no verified SNOMED concept; omit snomed"
            msg = f"SNOMED {snomed} does not pair with ICD-10-CM {icd}; {hint}"
            yield make_issue("E_CODE_MISMATCH", f"{path}.snomed", msg)
        if v.get(f"{path}.is_primary") is True:
            primaries.append(f"{path}.is_primary")
    for path in primaries[1:]:
        yield make_issue(
            "E_MULTIPLE_PRIMARY", path, f"more than one primary condition ({primaries[0]})"
        )


def _duplicates(
    v: _View, array: str, fields: Sequence[str], report: Callable[[str], str], what: str
) -> Iterator[Issue]:
    """E_DUPLICATE_KEY for every element whose key repeats an earlier element's
    (docs/decisions.md#d17); no ``fields``: the element itself is the key."""
    seen: dict[tuple[Any, ...], str] = {}
    for path, key in v.keys(array, fields):
        if None in key:
            continue
        if key in seen:
            shown = "/".join(str(k) for k in key)
            msg = f"{what} {shown} repeats {seen[key]}"
            yield make_issue("E_DUPLICATE_KEY", report(path), msg)
        else:
            seen[key] = path


def _key_rules(v: _View) -> Iterator[Issue]:
    yield from _duplicates(
        v, "conditions", ("condition_id",), lambda p: f"{p}.condition_id", "condition_id"
    )
    yield from _duplicates(
        v, "conditions", ("icd10cm",), lambda p: f"{p}.icd10cm", "ICD-10-CM code"
    )
    yield from _duplicates(v, "treatment_sites", ("site", "laterality"), str, "treatment site")
    yield from _duplicates(v, "rom", _ROM_KEY, str, "ROM measurement")
    yield from _duplicates(
        v, "outcome_measures", ("instrument",), lambda p: f"{p}.instrument", "instrument"
    )
    yield from _duplicates(v, "adjunct_therapies", ("type",), lambda p: f"{p}.type", "adjunct type")
    yield from _duplicates(
        v, "adverse_effects", ("type", "site_index"), str, "adverse effect (type, site)"
    )
    yield from _duplicates(v, "iastm_parameters.strokes", (), str, "stroke")
    yield from _duplicates(v, "billing.cpt_lines", ("code",), lambda p: f"{p}.code", "CPT code")


def _reference_rules(v: _View) -> Iterator[Issue]:
    sites = v.items("treatment_sites")
    if not sites:
        return
    for _, path in [*v.items("adverse_effects"), *v.items("conditions")]:
        index = v.get(f"{path}.site_index")
        if index is not None and not 0 <= index < len(sites):
            msg = f"site_index {index} does not point into treatment_sites (0-{len(sites) - 1})"
            yield make_issue("E_REF", f"{path}.site_index", msg)
        elif index is not None and path.startswith("conditions"):
            side, site_side = v.get(f"{path}.laterality"), v.get(f"{sites[index][1]}.laterality")
            if None not in (side, site_side) and side != site_side:
                msg = f"the condition is {side}; its site treatment_sites[{index}] is {site_side}"
                yield make_issue("E_LATERALITY_CONFLICT", f"{path}.site_index", msg)


_RULES = (
    _version_rules,
    _status_rules,
    _technique_rules,
    _session_rules,
    _condition_rules,
    _key_rules,
    _reference_rules,
    _plausibility_rules,
    _screening_rules,
)


def cross_field_issues(data: Mapping[str, Any], bad: set[str]) -> list[Issue]:
    """All cross-field errors and warnings of ``data``; ``bad``: paths that already have issues."""
    view = _View(data, bad)
    return [issue for rule in _RULES for issue in rule(view)]


__all__ = ["cross_field_issues", "icd_side", "snomed_for_icd"]
