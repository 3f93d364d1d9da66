"""Test data for internal records: the example files, JSON Pointer edits, and ``valid_records()``.

``valid_records()`` is a hypothesis strategy of VALID record dicts
(docs/validation.md#record-validation, docs/decisions.md#d16 to #d22):
varied techniques, sites and lateralities consistent with the conditions' ICD-10-CM codes
(docs/codes.md#icd-10-cm,
billable only, SNOMED paired per docs/decisions.md#d19), all three statuses with their conditional
fields,
pain / ROM / PROMs / adverse effects / adjuncts, and date-times in odd UTC offsets (+05:30, -03:00,
+05:45, +13:45, -09:30, Z, ...). Other test modules build on it: keep its name and contract.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from fhir_iastm.records.vocab import (
    ABSOLUTE_CONTRAINDICATIONS,
    PRESSURES,
    SCREENING_FINDINGS,
    STROKES,
    TOLERANCES,
)

EXAMPLES = Path(__file__).parent / "data" / "examples"
DELETE = object()  # with_changes: remove the member at this pointer


@cache
def _example_text(name: str) -> str:
    return (EXAMPLES / f"{name.removesuffix('.json')}.json").read_text(encoding="utf-8")


def example(name: str) -> dict[str, Any]:
    """A fresh copy of ``tests/data/examples/<name>.json``; ``name`` may be a prefix (good-01)."""
    if not (EXAMPLES / f"{name}.json").exists():
        matches = sorted(
            p.stem for p in EXAMPLES.glob(f"{name}*.json") if ".expected" not in p.name
        )
        assert len(matches) == 1, f"example {name!r} matches {matches}"
        name = matches[0]
    return json.loads(_example_text(name))


def _tokens(pointer: str) -> list[str]:
    assert pointer.startswith("/"), pointer
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def with_changes(data: Any, changes: dict[str, Any]) -> Any:
    """A deep copy of ``data`` with each JSON Pointer set to its value (``DELETE`` removes it)."""
    out = copy.deepcopy(data)
    for pointer, value in changes.items():
        *parents, last = _tokens(pointer)
        node = out
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        elif isinstance(node, list) and key == len(node):
            node.append(copy.deepcopy(value))
        else:
            node[key] = copy.deepcopy(value)
    return out


def pointer_to_path(pointer: str) -> str:
    """JSON Pointer ``/treatment_sites/0/laterality`` -> ``treatment_sites[0].laterality``."""
    path = ""
    for token in _tokens(pointer):
        path += f"[{token}]" if token.isdigit() else (f".{token}" if path else token)
    return path


# --- valid_records() -------------------------------------------------------------------------

#: Condition families of docs/codes.md#icd-10-cm: ICD code per side ("any": the code has no side;
#: "unspecified": an unspecified-side code), the sites treated for it, the SNOMED pair of
#: docs/decisions.md#d19 (None: no verified concept) and a clinician's wording. ``{x}``: 7th
#: character.
_FAMILIES: list[dict[str, Any]] = [
    {"icd": {"right": "M77.11", "left": "M77.12"}, "sites": ["elbow-lateral"],
     "snomed": "202855006", "text": "Lateral epicondylitis"},
    {"icd": {"right": "M77.01", "left": "M77.02"}, "sites": ["elbow-medial"],
     "snomed": "53286005", "text": "Medial epicondylitis"},
    {"icd": {"right": "M76.51", "left": "M76.52"}, "sites": ["patellar-tendon", "knee"],
     "snomed": "37785001", "text": "Patellar tendinitis"},
    {"icd": {"right": "S76.311{x}", "left": "S76.312{x}"}, "sites": ["hamstring", "thigh"],
     "snomed": "481000119104", "text": "Hamstring strain"},
    {"icd": {"right": "Z96.651", "left": "Z96.652", "bilateral": "Z96.653"}, "sites": ["knee"],
     "snomed": None, "text": "Presence of artificial knee joint"},
    {"icd": {"right": "Z96.641", "left": "Z96.642", "bilateral": "Z96.643"}, "sites": ["hip"],
     "snomed": None, "text": "Presence of artificial hip joint"},
    {"icd": {"right": "M25.561", "left": "M25.562"}, "sites": ["knee"],
     "snomed": None, "text": "Pain in knee"},
    {"icd": {"any": "M72.2"}, "sites": ["plantar-fascia"],
     "snomed": "202882003", "text": "Plantar fasciitis"},
    {"icd": {"any": "T84.84X{x}"}, "sites": ["knee", "hip"],
     "snomed": None, "text": "Pain due to orthopedic prosthesis"},
    {"icd": {"any": "G89.28"}, "sites": ["knee", "hip", "thigh"],
     "snomed": None, "text": "Other chronic postprocedural pain"},
    {"icd": {"any": "G89.18"}, "sites": ["knee", "hip"],
     "snomed": None, "text": "Other acute postprocedural pain"},
    {"icd": {"unspecified": "M77.10"}, "sites": ["elbow-lateral"],
     "snomed": "202855006", "text": "Lateral epicondylitis, side not recorded"},
    {"icd": {"unspecified": "S76.319{x}"}, "sites": ["hamstring"],
     "snomed": "481000119104", "text": "Hamstring strain, side not recorded"},
]  # fmt: skip

_ROM = {
    "knee": ("flexion", "extension"),
    "elbow": ("flexion", "extension", "pronation", "supination"),
    "hip": ("flexion", "extension", "abduction", "adduction", "internal-rotation",
            "external-rotation"),
    "ankle": ("dorsiflexion", "plantarflexion"),
    "wrist": ("flexion", "extension"),
}  # fmt: skip
_OFFSETS = ["Z", "+00:00", "+05:30", "-03:00", "+05:45", "-09:30", "+13:45", "+14:00", "-12:00",
            "+01:00", "-05:00", "-06:00", "+09:00", "-00:30"]  # fmt: skip
_TECHNIQUES = [
    "graston",
    "astym",
    "sastm",
    "gua-sha",
    "hawkgrips",
    "tecnica-gavilan",
    "iastm-other",
]
_INSTRUMENTS = ["steel-single-bevel", "steel-double-bevel", "steel-multi-curve", "ceramic-tool",
                "jade-or-stone-tool", "horn-tool", "polymer-tool", "other"]  # fmt: skip
_VERIFICATION = ["unconfirmed", "provisional", "differential", "confirmed", "refuted",
                 "entered-in-error"]  # fmt: skip
_CLINICAL = ["active", "recurrence", "relapse", "inactive", "remission", "resolved"]

_text_chars = st.characters(
    codec="utf-8", categories=("L", "N", "P", "Zs"), exclude_characters="\u2028\u2029"
)


@cache
def _text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(_text_chars, min_size=1, max_size=max_size).map(str.strip).filter(bool)


_bools = st.booleans()
_sides = st.sampled_from(["left", "right", "bilateral"])
_seventh = st.sampled_from("ADS")
_fractions = st.sampled_from(["", "", "", ".5", ".123", ".000000001"])
_offsets = st.sampled_from(_OFFSETS)
_verifications = st.sampled_from(_VERIFICATION)
_clinicals = st.sampled_from(_CLINICAL)
_onsets = st.none() | st.dates(date(1990, 1, 1), date(2030, 12, 31))
_onset_len = st.sampled_from([4, 7, 10])
_family_ids = st.lists(st.sampled_from(range(len(_FAMILIES))), min_size=1, max_size=3, unique=True)
_ident = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
_session_id = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,30}", fullmatch=True)


def npi_with_check_digit(base9: str) -> str:
    """``base9`` + the Luhn check digit over ``80840`` + base9 (US Core us-core-17)."""
    digits = [int(c) for c in "80840" + base9]
    total = 0
    for i, d in enumerate(reversed(digits)):  # positions 1.. from the right after the check digit
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return base9 + str((10 - total % 10) % 10)


def random_npi() -> str:
    """A random NPI that passes the Luhn check (for unique parties in integration tests)."""
    return npi_with_check_digit(f"{random.randrange(10**8, 10**9)}")


_postal = st.from_regex(r"[0-9]{5}(-[0-9]{4})?", fullmatch=True)
_npi = st.from_regex(r"[12][0-9]{8}", fullmatch=True).map(npi_with_check_digit)


def _stamp(moment: datetime, offset: str, fraction: str) -> str:
    """``moment`` shown in ``offset`` as RFC 3339 text (the instant is unchanged)."""
    if offset == "Z":
        tz = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    local = moment.astimezone(tz).replace(tzinfo=None, microsecond=0)
    return local.isoformat() + fraction + offset


@st.composite
def _instant(
    draw: st.DrawFn, after: datetime, min_minutes: int, max_minutes: int, fractions: bool
) -> tuple[datetime, str]:
    minutes = draw(st.integers(min_minutes, max_minutes))
    moment = after + timedelta(minutes=minutes)
    fraction = draw(_fractions) if fractions else ""
    return moment, _stamp(moment, draw(_offsets), fraction)


@st.composite
def _conditions(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    families = draw(_family_ids)
    seventh = draw(_seventh)
    conditions: list[dict[str, Any]] = []
    sites: list[dict[str, str]] = []

    def add_site(site: str, side: str) -> None:
        if {"site": site, "laterality": side} not in sites:
            sites.append({"site": site, "laterality": side})

    for index in families:
        family = _FAMILIES[index]
        site = draw(st.sampled_from(family["sites"]))
        side = draw(_sides)
        icd = family["icd"]
        if "any" in icd or "unspecified" in icd:
            code = icd.get("any") or icd["unspecified"]
            lateral = (
                "not-applicable"
                if "unspecified" in icd
                else draw(st.sampled_from([side, "not-applicable"]))
            )
            pairs = [(code, lateral)]
            add_site(site, side)
        elif side == "bilateral" and "bilateral" not in icd:
            pairs = [(icd["right"], "right"), (icd["left"], "left")]
            if draw(_bools):
                add_site(site, "bilateral")
            else:
                add_site(site, "right")
                add_site(site, "left")
        else:
            pairs = [(icd[side], side)]
            add_site(site, side if draw(_bools) else "bilateral")
        for code, lateral in pairs:
            conditions.append(draw(_condition(code.format(x=seventh), lateral, family)))
    for number, condition in enumerate(conditions, start=1):
        condition["condition_id"] = f"{condition['condition_id']}-{number:02d}"
    primary = draw(st.none() | st.integers(0, len(conditions) - 1))
    for i, condition in enumerate(conditions):
        if primary is not None and i == primary:
            condition["is_primary"] = True
        elif draw(_bools):
            condition["is_primary"] = False
    return conditions, draw(st.permutations(sites))


@st.composite
def _condition(
    draw: st.DrawFn, code: str, laterality: str, family: dict[str, Any]
) -> dict[str, Any]:
    verification = draw(_verifications)
    condition: dict[str, Any] = {
        "condition_id": draw(_ident.map(lambda s: s[:50])),
        "icd10cm": code,
        "text": draw(st.just(family["text"]) | _text(80)),
        "laterality": laterality,
        "verification_status": verification,
    }
    if family["snomed"] and draw(_bools):
        condition["snomed"] = family["snomed"]
    if verification != "entered-in-error":
        condition["clinical_status"] = draw(_clinicals)
    onset = draw(_onsets)
    if onset is not None:
        condition["onset_date"] = onset.isoformat()[: draw(_onset_len)]
    return condition


_joint_motion = st.sampled_from([(j, m) for j, motions in _ROM.items() for m in motions])
_rom_keys = st.lists(
    st.tuples(
        _joint_motion,
        st.sampled_from(["left", "right"]),
        st.sampled_from(["active", "passive"]),
        st.sampled_from(["pre", "post"]),
    ),
    max_size=4,
    unique=True,
)
_degrees = st.integers(-30, 180) | st.floats(-30, 180).map(lambda x: round(x, 1))
_rom_methods = st.sampled_from(["goniometer", "inclinometer", "visual-estimate"])


@st.composite
def _rom(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [
        {"joint": joint, "motion": motion, "laterality": side, "degrees": draw(_degrees),
         "mode": mode, "method": draw(_rom_methods), "timing": timing}
        for (joint, motion), side, mode, timing in draw(_rom_keys)
    ]  # fmt: skip


@st.composite
def _outcome(draw: st.DrawFn, instrument: str) -> dict[str, Any]:
    if instrument == "LEFS":
        return {"instrument": "LEFS", "score": draw(st.integers(0, 80))}
    if instrument == "QuickDASH":
        score = draw(st.integers(0, 100) | st.floats(0, 100).map(lambda x: round(x, 1)))
        return {"instrument": "QuickDASH", "score": score}
    items = draw(st.lists(st.tuples(_text(30), st.integers(0, 10)), max_size=5))
    if not items:
        return {"instrument": "PSFS", "score": round(draw(st.floats(0, 10)), 1)}
    mean = round(sum(s for _, s in items) / len(items), 2)
    return {
        "instrument": "PSFS",
        "score": mean,
        "items": [{"activity": activity, "score": score} for activity, score in items],
    }


@st.composite
def _parties(draw: st.DrawFn) -> dict[str, Any]:
    clinic: dict[str, Any] = {"clinic_id": draw(_ident), "name": draw(_text()), "npi": draw(_npi)}
    if draw(_bools):
        clinic["address"] = {
            "line": [draw(_text())],
            "city": draw(_text(20)),
            "state": draw(st.sampled_from(["IL", "CA", "NY", "PR", "DC"])),
            "postal_code": draw(_postal),
        }
    patient = {
        "mrn": draw(_ident),
        "family_name": draw(_text()),
        "given_names": draw(st.lists(_text(20), min_size=1, max_size=3)),
        "birth_date": draw(st.dates(date(1920, 1, 1), date(2020, 12, 31))).isoformat(),
        "gender": draw(st.sampled_from(["male", "female", "other", "unknown"])),
    }
    therapist: dict[str, Any] = {
        "npi": draw(_npi),
        "family_name": draw(_text()),
        "given_names": draw(st.lists(_text(20), min_size=1, max_size=2)),
    }
    if draw(_bools):
        credentials = st.sampled_from(["PT", "DPT", "OCS", "SCS"])
        therapist["credentials"] = draw(st.lists(credentials, max_size=3, unique=True))
        therapist["license_state"] = "IL"
        therapist["license_number"] = draw(st.from_regex(r"[0-9]{9}", fullmatch=True))
    return {"clinic": clinic, "patient": patient, "therapist": therapist}


def _drop_empty(data: dict[str, Any], keys: list[str]) -> None:
    for key in keys:
        if data.get(key) in ([], None):
            data.pop(key, None)


@st.composite
def _measurements(draw: st.DrawFn, status: str, site_count: int) -> dict[str, Any]:
    """Pain, ROM, PROMs, instruments, adverse effects and adjuncts fitting ``status``."""
    if status == "cancelled":
        return {}
    tools = draw(st.lists(st.sampled_from(_INSTRUMENTS), max_size=3, unique=True))
    out: dict[str, Any] = {"instruments": [{"code": code} for code in tools]}
    if status == "completed" or draw(_bools):
        pain: dict[str, Any] = {"scale": "NRS-11"}
        if status == "completed" or draw(_bools):
            pain["pre"] = draw(st.integers(0, 10))
        if draw(_bools):
            pain["post"] = draw(st.integers(0, 10))
        out["pain"] = pain
    out["rom"] = draw(_rom())
    instruments = draw(
        st.lists(st.sampled_from(["LEFS", "QuickDASH", "PSFS"]), max_size=3, unique=True)
    )
    out["outcome_measures"] = [draw(_outcome(i)) for i in instruments]
    effects = []
    for _ in range(draw(st.integers(0, 3))):
        effect: dict[str, Any] = {
            "type": draw(st.sampled_from(["bruising", "petechiae", "soreness"])),
            "severity": draw(st.sampled_from(["mild", "moderate", "severe"])),
        }
        if draw(_bools):
            effect["site_index"] = draw(st.integers(0, site_count - 1))
        if draw(_bools):
            effect["expected"] = draw(_bools)
        keys = {(e["type"], e.get("site_index")) for e in effects}
        if (effect["type"], effect.get("site_index")) not in keys:  # one per (type, site)
            effects.append(effect)
    out["adverse_effects"] = effects
    adjuncts = draw(
        st.lists(st.sampled_from(["stretching", "strengthening"]), max_size=2, unique=True)
    )
    out["adjunct_therapies"] = []
    for kind in adjuncts:
        adjunct: dict[str, Any] = {"type": kind, "minutes": draw(st.integers(1, 60))}
        if draw(_bools):
            adjunct["text"] = draw(_text(60))
        out["adjunct_therapies"].append(adjunct)
    _drop_empty(out, ["instruments", "rom", "outcome_measures", "adjunct_therapies"])
    return out


@st.composite
def _session(draw: st.DrawFn, status: str, fractions: bool) -> tuple[dict[str, Any], datetime]:
    start_moment = draw(st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31))).replace(
        microsecond=0, tzinfo=UTC
    )
    _, start = draw(_instant(start_moment, 0, 0, fractions))
    planned = draw(st.none() | st.integers(1, 20))
    session: dict[str, Any] = {
        "start": start,
        "session_number": draw(st.integers(1, planned or 40)),
    }
    if planned is not None:
        session["planned_sessions"] = planned
    if draw(_bools):
        session["plan_of_care_id"] = draw(_ident)
    last = start_moment
    if status != "cancelled":
        last, session["end"] = draw(_instant(start_moment, 5, 120, fractions))
        if draw(_bools):
            span = datetime.fromisoformat(session["end"]) - datetime.fromisoformat(start)
            minutes = span.total_seconds() / 60
            near = [m for m in range(int(minutes) - 1, int(minutes) + 3) if abs(m - minutes) <= 1]
            session["duration_min"] = draw(st.sampled_from(near))
    return session, last


@st.composite
def valid_records(draw: st.DrawFn, *, fractions: bool = True) -> dict[str, Any]:
    """A VALID internal record dict (``load_record`` accepts it with no issue at all).

    ``fractions=False`` keeps date-times to whole seconds. With the default, some carry 1 to 9
    fractional digits (docs/decisions.md#d20 allows them; note fhir.resources re-formats such
    values).
    """
    status = draw(st.sampled_from(["completed", "completed", "cancelled", "entered-in-error"]))
    conditions, sites = draw(_conditions())
    session, last = draw(_session(status, fractions))
    technique: dict[str, Any] = {"code": draw(st.sampled_from(_TECHNIQUES))}
    if technique["code"] == "iastm-other" or draw(_bools):
        technique["text"] = draw(_text(60))
    record: dict[str, Any] = {
        "schema_version": "1.0",
        "session_id": draw(_session_id),
        "record_version": draw(st.integers(1, 50)),
        "status": status,
        **draw(_parties()),
        "session": session,
        "technique": technique,
        "treatment_sites": sites,
        "conditions": conditions,
        **draw(_measurements(status, len(sites))),
        "recorded_at": draw(_instant(last, 0, 600, fractions))[1],
    }
    if status != "completed":
        record["status_reason"] = draw(_text(120))
    if draw(_bools):
        record["notes"] = draw(_text(300))
    if draw(_bools):
        record["last_modified"] = draw(_instant(last, 600, 6000, fractions))[1]
    if draw(_bools):
        cpt = st.sampled_from(["97140", "97110", "97530"])
        codes = draw(st.lists(cpt, min_size=1, unique=True))
        record["billing"] = {"cpt_lines": [{"code": c, "units": draw(st.integers(1, 4))}
                                           for c in codes]}  # fmt: skip
    if draw(_bools):
        _version_2(draw, record)
    return record


def _version_2(draw: st.DrawFn, record: dict[str, Any]) -> None:
    """Make ``record`` a schema 2.0 record when its IASTM minutes can fit in the visit."""
    session = record["session"]
    if record["status"] == "completed":
        span = datetime.fromisoformat(session["end"]) - datetime.fromisoformat(session["start"])
        adjuncts = sum(a["minutes"] for a in record.get("adjunct_therapies", []))
        room = int(span.total_seconds() // 60) - adjuncts
        if room < 1:
            return
        session["iastm_minutes"] = draw(st.integers(1, room))
    record["schema_version"] = "2.0"
    if draw(_bools):
        record["visit_kind"] = draw(st.sampled_from(["evaluation", "re-evaluation", "treatment"]))
    if record["status"] != "cancelled" and draw(_bools):
        name = draw(st.sampled_from(["PRTEE", "FAAM-ADL", "FAAM-Sports", "VISA-P", "KOOS-JR"]))
        score = (
            draw(st.integers(0, 100)) if name == "VISA-P" else draw(st.sampled_from([0, 37.5, 100]))
        )
        record.setdefault("outcome_measures", []).append({"instrument": name, "score": score})
    if draw(_bools):
        record["screening"] = draw(_screening(record["status"], session["start"]))
    if draw(_bools):
        record["iastm_parameters"] = {
            "strokes": draw(st.lists(st.sampled_from(STROKES), unique=True, max_size=3)),
            "pressure": draw(st.sampled_from(PRESSURES)),
            "tolerance": draw(st.sampled_from(TOLERANCES)),
        }
    sides = [s["laterality"] for s in record["treatment_sites"]]
    for condition in record["conditions"]:
        if condition["laterality"] in sides and draw(_bools):
            condition["site_index"] = sides.index(condition["laterality"])


@st.composite
def _screening(draw: st.DrawFn, status: str, start: str) -> dict[str, Any]:
    """A screening a record of ``status`` may carry (docs/clinical.md#screening)."""
    findings = draw(st.lists(st.sampled_from(SCREENING_FINDINGS), unique=True, max_size=3))
    screening: dict[str, Any] = {
        "performed_at": start,
        "anticoagulant_therapy": draw(_bools),
        "skin_intact": draw(_bools),
        "consent_obtained": status == "completed" or draw(_bools),
        "findings": findings,
    }
    absolute = set(findings) & set(ABSOLUTE_CONTRAINDICATIONS)
    if (absolute and status == "completed") or draw(_bools):
        screening["override_reason"] = draw(_text(120))
    return screening


__all__ = ["DELETE", "EXAMPLES", "example", "pointer_to_path", "valid_records", "with_changes"]
