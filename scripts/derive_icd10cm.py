"""Derive fhir_iastm/data/icd10cm.txt.gz from the pinned simple-icd-10-cm package.

The package keeps the whole FY tabular in memory (~190 MB per process). fhir-iastm needs only
which dotted codes exist, which are billable leaves, the side a billable code's title states and
its title (the ``display`` of an ICD-10-CM coding), so this script writes them once, one line per
code that can pass the record's ICD format (docs/decisions.md#d19; chapters and blocks cannot)::

    <code> TAB <1 if billable leaf else 0> TAB <side> TAB <tabular title, billable codes only>

``side`` is R (right), L (left), B (bilateral, or both sides named), U (side unspecified) or -
(the title names no side); the rules are in :func:`sides` and docs/clinical.md. It then
rewrites the laterality invariants of profiles/StructureDefinition-iastm-condition.json from the
table. tests/records/test_icd10cm_table.py re-derives every line from the package and compares.

    .venv/bin/python scripts/derive_icd10cm.py
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fhir_iastm" / "data" / "icd10cm.txt.gz"
PROFILE = ROOT / "profiles" / "StructureDefinition-iastm-condition.json"
ICD_RE = re.compile(r"[A-TV-Z][0-9][0-9AB](\.[0-9A-Z]{1,4})?")

#: Title phrases where "right"/"left" is not the side of a paired body part: "left" as a verb,
#: chambers and conduction paths of the (single) heart, the left colon, and the fellow eye of a
#: two-eye vision code ("…right eye, normal vision left eye" concerns the right eye).
NOT_A_SIDE = re.compile(
    r"\bleft (?:in|during)\b"
    r"|\b(?:right|left)[- ](?:heart|ventricle|ventricular|bundle|anterior fascicular"
    r"|posterior fascicular|fascicular|main coronary|coronary|circumflex|anterior descending"
    r"|aortic arch|superior vena cava|sided colitis)\b"
    r"|\bnormal vision (?:right|left) eye\b",
    re.IGNORECASE,
)
_SIDE_WORD = re.compile(r"\b(right|left|bilateral)\b")


def _named(title: str) -> set[str]:
    return set(_SIDE_WORD.findall(NOT_A_SIDE.sub(" ", title).lower()))


def sides(titles: Mapping[str, str]) -> dict[str, str]:
    """Billable code -> R/L/B/U/- from the tabular titles of all billable codes.

    R, L, B: the title names that side ("Achilles tendinitis, right leg"; both right and left
    named, as in two-eye vision codes, count as B). U: the title says "unspecified" where a
    sibling title of the same code family says right or left — either literally ("Pain in
    unspecified hip" vs "Pain in right hip") or "unspecified <part>" for a part some title
    names with a side ("…, unspecified side", "…, unspecified ear"), in a 3-character category
    that has sided codes. Everything else is - (no side)."""
    named = {code: _named(title) for code, title in titles.items()}
    sided = {t.lower() for c, t in titles.items() if named[c] & {"right", "left"}}
    categories = {c[:3] for c, words in named.items() if words}
    parts = {
        m.group(1)
        for c, t in titles.items()
        if named[c] & {"right", "left"}
        for m in re.finditer(r"\b(?:right|left) (\w+)", NOT_A_SIDE.sub(" ", t).lower())
    }
    out = {}
    for code, title in titles.items():
        words = named[code]
        if {"right", "left"} <= words or words == {"bilateral"}:
            out[code] = "B"
        elif words & {"right", "left"}:
            out[code] = "R" if "right" in words else "L"
        elif code[:3] in categories and _unspecified(title.lower(), sided, parts):
            out[code] = "U"
        else:
            out[code] = "-"
    return out


def _unspecified(title: str, sided: set[str], parts: set[str]) -> bool:
    for m in re.finditer(r"\bunspecified\b", title):
        if any(f"{title[: m.start()]}{s}{title[m.end() :]}" in sided for s in ("right", "left")):
            return True
    return any(m.group(1) in parts for m in re.finditer(r"\bunspecified (\w+)", title))


def table_lines() -> list[str]:
    """The table's lines (header first), from the installed simple-icd-10-cm."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as icd

    # the package lists a few codes twice: once each, sorted (fhir_iastm.records.icd10cm bisects)
    codes = sorted({c for c in icd.get_all_codes(with_dots=True) if ICD_RE.fullmatch(c)})
    billable = {c: " ".join(icd.get_description(c).split()) for c in codes if icd.is_leaf(c)}
    side = sides(billable)
    head = "code<TAB>billable<TAB>side<TAB>title"
    lines = [f"# simple-icd-10-cm {version('simple-icd-10-cm')}: {head}"]
    for code in codes:
        if code in billable:
            lines.append(f"{code}\t1\t{side[code]}\t{billable[code]}")
        else:
            lines.append(f"{code}\t0\t-\t")
    return lines


def write_profile_invariants() -> None:
    """Regenerate iastm-cond-2r/2l/2b/2u in the Condition profile from the table."""
    from fhir_iastm.validation.laterality import LATERALITY_INVARIANTS, invariant_expression

    profile = json.loads(PROFILE.read_text())
    root = profile["differential"]["element"][0]
    for constraint in root["constraint"]:
        if constraint["key"] in LATERALITY_INVARIANTS:
            constraint["expression"] = invariant_expression(constraint["key"])
    PROFILE.write_text(json.dumps(profile, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    lines = table_lines()
    # mtime=0: the same package gives a byte-identical file
    OUT.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    print(f"{OUT}: {len(lines) - 1} codes")  # noqa: T201
    write_profile_invariants()
    print(f"{PROFILE}: laterality invariants regenerated")  # noqa: T201


if __name__ == "__main__":
    main()
