"""Terminology checks — element bindings against local ValueSets, and codes of local
CodeSystems wherever they appear.

Required → error, extensible → warning,
preferred/example → nothing; a ValueSet that is intensional or unknown here → warning
"cannot be checked offline" (docs/decisions.md#d2), never an error.
Rule ids: ``binding:<element id>``, ``codesystem:<system url>``.
Spec: https://hl7.org/fhir/R4/terminologies.html#strength
"""

from __future__ import annotations

from typing import Any

from fhir_iastm.profiles import ElementNode, Expansion
from fhir_iastm.validation.context import ValidationContext
from fhir_iastm.validation.r4rules import report_unknown

_HL7 = "http://hl7.org/fhir/"
_THO = "http://terminology.hl7.org/CodeSystem/"


def _vs(system: str, codes: str) -> Expansion:
    return frozenset((system, code) for code in codes.split())


#: R4 base required ValueSets a profile may re-declare (FHIR 4.0.1 valueset-*.html).
BUILTIN_VALUE_SETS: dict[str, Expansion] = {
    _HL7 + "ValueSet/event-status": _vs(
        _HL7 + "event-status",
        "preparation in-progress not-done on-hold stopped completed entered-in-error unknown",
    ),
    _HL7 + "ValueSet/observation-status": _vs(
        _HL7 + "observation-status",
        "registered preliminary final amended corrected cancelled entered-in-error unknown",
    ),
    _HL7 + "ValueSet/encounter-status": _vs(
        _HL7 + "encounter-status",
        "planned arrived triaged in-progress onleave finished cancelled entered-in-error unknown",
    ),
    _HL7 + "ValueSet/condition-clinical": _vs(
        _THO + "condition-clinical", "active recurrence relapse inactive remission resolved"
    ),
    _HL7 + "ValueSet/condition-ver-status": _vs(
        _THO + "condition-ver-status",
        "unconfirmed provisional differential confirmed refuted entered-in-error",
    ),
    _HL7 + "ValueSet/administrative-gender": _vs(
        _HL7 + "administrative-gender", "male female other unknown"
    ),
    _HL7 + "ValueSet/contact-point-system": _vs(
        _HL7 + "contact-point-system", "phone fax email pager url sms other"
    ),
    _HL7 + "ValueSet/contact-point-use": _vs(
        _HL7 + "contact-point-use", "home work temp old mobile"
    ),
    _HL7 + "ValueSet/identifier-use": _vs(
        _HL7 + "identifier-use", "usual official temp secondary old"
    ),
    _HL7 + "ValueSet/name-use": _vs(
        _HL7 + "name-use", "usual official temp nickname anonymous old maiden"
    ),
    _HL7 + "ValueSet/address-use": _vs(_HL7 + "address-use", "home work temp old billing"),
    _HL7 + "ValueSet/address-type": _vs(_HL7 + "address-type", "postal physical both"),
    _HL7 + "ValueSet/quantity-comparator": _vs(_HL7 + "quantity-comparator", "< <= >= >"),
    _HL7 + "ValueSet/narrative-status": _vs(
        _HL7 + "narrative-status", "generated extensions additional empty"
    ),
    _HL7 + "ValueSet/link-type": _vs(_HL7 + "link-type", "replaced-by replaces refer seealso"),
    _HL7 + "ValueSet/encounter-location-status": _vs(
        _HL7 + "encounter-location-status", "planned active reserved completed"
    ),
    _HL7 + "ValueSet/provenance-entity-role": _vs(
        _HL7 + "provenance-entity-role", "derivation revision quotation source removal"
    ),
    _HL7 + "ValueSet/questionnaire-answers-status": _vs(
        _HL7 + "questionnaire-answers-status",
        "in-progress completed amended entered-in-error stopped",
    ),
}


def _codings(value: Any) -> list[tuple[str | None, str]] | None:
    """(system, code) pairs of a code / Coding / CodeableConcept; None when not codeable."""
    if isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return None
    if "coding" in value or ("text" in value and "code" not in value):
        codings = value.get("coding")
        return [
            (_text(c.get("system")), str(c.get("code")))
            for c in (codings if isinstance(codings, list) else [])
            if isinstance(c, dict) and "code" in c
        ]
    if "code" in value:
        return [(_text(value.get("system")), str(value["code"]))]
    return None


def _text(value: Any) -> str | None:
    """A string as is; anything else (malformed input) as its JSON-ish text."""
    return value if isinstance(value, str) or value is None else str(value)


def _in(expansion: Expansion, system: str | None, code: str) -> bool:
    if system is None:
        return any(c == code for _, c in expansion)
    return (system, code) in expansion


def check_binding(node: ElementNode, path: str, value: Any, ctx: ValidationContext) -> None:
    """Check one value against the element's binding."""
    binding = node.binding
    if binding is None or binding.strength not in ("required", "extensible"):
        return
    codes = _codings(value)
    if codes is None:
        return
    rule = f"binding:{node.id}"
    url = binding.value_set
    expansion = ctx.index.value_sets.get(url) or BUILTIN_VALUE_SETS.get(url)
    if expansion is None:
        ctx.add(
            "warning",
            "not-supported",
            path,
            f"ValueSet {url} cannot be checked offline (intensional or not available)",
            rule,
        )
        return
    if any(_in(expansion, system, code) for system, code in codes):
        return
    severity = "error" if binding.strength == "required" else "warning"
    if not codes:
        if binding.strength == "required":
            ctx.add(
                severity,
                "code-invalid",
                path,
                f"no code provided; a code from {url} is required",
                rule,
            )
        return
    shown = ", ".join(f"{s or ''}#{c}" for s, c in codes)
    ctx.add(
        severity,
        "code-invalid",
        path,
        f"{shown} is not in ValueSet {url} ({binding.strength} binding)",
        rule,
    )


def check_local_codes(codings: list[tuple[str, dict[str, Any]]], ctx: ValidationContext) -> None:
    """Every Coding of a complete local CodeSystem must name a code defined in it."""
    code_sets = ctx.index.code_sets
    for path, coding in codings:
        system = coding.get("system")
        known = code_sets.get(system) if isinstance(system, str) else None
        code = coding.get("code")
        if known is None or (isinstance(code, str) and code in known):
            continue
        report_unknown(ctx, path, str(system), code)


__all__ = ["BUILTIN_VALUE_SETS", "check_binding", "check_local_codes"]
