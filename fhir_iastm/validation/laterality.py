"""The Condition laterality invariants, generated from the ICD-10-CM table.

``iastm-cond-2r/2l/2b`` require
the mCODE laterality right / left / bilateral on ``bodySite`` when the ICD-10-CM code's title
states that side; ``iastm-cond-2u`` forbids a laterality on a code that leaves the side
unspecified. Their FHIRPath (in profiles/StructureDefinition-iastm-condition.json, written by
scripts/derive_icd10cm.py) matches the code against a regular expression compiled from the
table's code list, so HAPI checks exactly what the record rules check; the native twins below
read the table directly. tests/validation/test_laterality.py proves the profile text is
:func:`invariant_expression` and that both agree.
"""

from __future__ import annotations

import functools
from typing import Any

from fhir_iastm.records.icd10cm import codes_with_side, icd_side

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LAT = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"

#: invariant key -> (side in the table, SNOMED laterality required; None = none allowed)
LATERALITY_INVARIANTS: dict[str, tuple[str, str | None]] = {
    "iastm-cond-2r": ("right", "24028007"),
    "iastm-cond-2l": ("left", "7771000"),
    "iastm-cond-2b": ("bilateral", "51440002"),
    "iastm-cond-2u": ("unspecified", None),
}


def code_regex(codes: tuple[str, ...]) -> str:
    """A regular expression matching exactly ``codes`` (a trie; identical subtrees merged).

    Only ``[A-Z0-9.]`` occur in ICD-10-CM codes; ``.`` is written ``[.]`` so the FHIRPath string
    needs no backslash escapes."""
    trie: dict[str, Any] = {}
    for code in codes:
        node = trie
        for ch in code:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _emit(trie)


def _emit(node: dict[str, Any]) -> str:
    children = [(k, v) for k, v in node.items() if k]
    if not children:
        return ""
    by_tail: dict[str, list[str]] = {}
    for char, child in children:
        by_tail.setdefault(_emit(child), []).append(char)
    alternatives = []
    for tail, chars in sorted(by_tail.items()):
        chars = sorted(chars)
        head = "[.]" if chars == ["."] else chars[0] if len(chars) == 1 else f"[{''.join(chars)}]"
        alternatives.append(head + tail)
    body = alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"
    return f"(?:{body})?" if "" in node else body


@functools.cache
def invariant_expression(key: str) -> str:
    """The FHIRPath of a laterality invariant, from the current table."""
    side, laterality = LATERALITY_INVARIANTS[key]
    pattern = code_regex(codes_with_side(side))
    premise = f"code.coding.where(system='{ICD}' and code.matches('^(?:{pattern})$')).exists()"
    qualifiers = f"bodySite.extension.where(url='{LAT}')"
    if laterality is None:
        return f"{premise} implies {qualifiers}.empty()"
    return (
        f"{premise} implies {qualifiers}.value.coding"
        f".where(system='{SCT}' and code='{laterality}').exists()"
    )


def _lateralities(res: dict[str, Any]) -> list[Any]:
    out = []
    for site in res.get("bodySite") or []:
        for ext in (site.get("extension") or []) if isinstance(site, dict) else []:
            if isinstance(ext, dict) and ext.get("url") == LAT:
                out.append(ext.get("valueCodeableConcept"))
    return out


def native_check(key: str) -> Any:
    """The native twin of one laterality invariant (None: let FHIRPath decide)."""
    side, laterality = LATERALITY_INVARIANTS[key]

    def check(res: Any, _type: str) -> bool | None:
        if not isinstance(res, dict) or not isinstance(res.get("code"), dict):
            return None
        codings = res["code"].get("coding") or []
        if not all(isinstance(c, dict) for c in codings):
            return None
        codes = [c.get("code") for c in codings if c.get("system") == ICD and "code" in c]
        if not all(isinstance(c, str) for c in codes):
            return None
        # ``$`` also matches before one final newline (Python and Java regexes alike)
        if not any(icd_side(c.removesuffix("\n")) == side for c in codes):
            return True
        qualifiers = _lateralities(res)
        if laterality is None:
            return not qualifiers
        return any(
            isinstance(cc, dict)
            and any(
                isinstance(c, dict) and c.get("system") == SCT and c.get("code") == laterality
                for c in cc.get("coding") or []
            )
            for cc in qualifiers
        )

    return check


__all__ = ["LATERALITY_INVARIANTS", "code_regex", "invariant_expression", "native_check"]
