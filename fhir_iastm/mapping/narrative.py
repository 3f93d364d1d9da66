"""Human-readable narratives (``Resource.text``, status ``generated``) for mapped resources
(docs/console.md#narrative).

Written from the resource itself, so a narrative says what the structured data says and nothing
more (FHIR R4 §2.4 Narrative: ``generated`` = entirely generated from the structured data). The
XHTML is the limited subset FHIR allows (invariants txt-1, txt-2): one ``div`` in the XHTML
namespace holding ``p``, ``b``, ``ul`` and ``li`` with escaped text only.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from functools import lru_cache
from html import escape
from typing import Any

XHTML = "http://www.w3.org/1999/xhtml"


def concept(value: Any) -> str:
    """A CodeableConcept's words: its text, else its first display, else its first code."""
    if not isinstance(value, dict):
        return ""
    if value.get("text"):
        return str(value["text"])
    codings = value.get("coding") or []
    for key in ("display", "code"):
        for coding in codings:
            if coding.get(key):
                return str(coding[key])
    return ""


def _code(value: Any, system_suffix: str) -> str:
    for coding in (value or {}).get("coding") or []:
        if str(coding.get("system", "")).endswith(system_suffix):
            return str(coding.get("code", ""))
    return ""


def _period(resource: dict[str, Any], prefix: str) -> str:
    period = resource.get(prefix + "Period" if prefix else "period")
    if isinstance(period, dict):
        start, end = period.get("start", ""), period.get("end")
        return f"{start} to {end}" if end else str(start)
    return str(resource.get(prefix + "DateTime", ""))


def _name(resource: dict[str, Any]) -> str:
    names = resource.get("name") or []
    if isinstance(names, str):
        return names
    if not names:
        return ""
    first = names[0]
    parts = [*first.get("given", []), first.get("family", ""), *first.get("suffix", [])]
    return " ".join(p for p in parts if p)


def _value(resource: dict[str, Any]) -> str:
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict):
        return f"{quantity.get('value')} {quantity.get('unit', '')}".strip()
    for key in ("valueInteger", "valueString", "valueBoolean"):
        if key in resource:
            return str(resource[key])
    if "valueCodeableConcept" in resource:
        return concept(resource["valueCodeableConcept"])
    return ""


def _procedure(r: dict[str, Any]) -> list[tuple[str, str]]:
    sites = ", ".join(concept(s) for s in r.get("bodySite") or [])
    return [("Procedure", concept(r.get("code"))), ("Status", str(r.get("status", ""))),
            ("Performed", _period(r, "performed")), ("Body site", sites),
            ("Complications", ", ".join(concept(c) for c in r.get("complication") or [])),
            ("Note", " ".join(n.get("text", "") for n in r.get("note") or []))]


def _condition(r: dict[str, Any]) -> list[tuple[str, str]]:
    icd = _code(r.get("code"), "icd-10-cm")
    return [("Condition", concept(r.get("code"))), ("ICD-10-CM", icd),
            ("Body site", ", ".join(concept(s) for s in r.get("bodySite") or [])),
            ("Clinical status", concept(r.get("clinicalStatus"))),
            ("Verification", concept(r.get("verificationStatus"))),
            ("Onset", str(r.get("onsetDateTime", "")))]


def _observation(r: dict[str, Any]) -> list[tuple[str, str]]:
    parts = [(concept(c.get("code")), _value(c)) for c in r.get("component") or []]
    return [("Observation", concept(r.get("code"))), ("Value", _value(r)),
            ("Status", str(r.get("status", ""))), ("When", _period(r, "effective")),
            ("Body site", concept(r.get("bodySite"))), *parts]


def _patient(r: dict[str, Any]) -> list[tuple[str, str]]:
    return [("Patient", _name(r)), ("Gender", str(r.get("gender", ""))),
            ("Birth date", str(r.get("birthDate", ""))),
            ("Identifier", ", ".join(str(i.get("value", "")) for i in r.get("identifier") or []))]


def _practitioner(r: dict[str, Any]) -> list[tuple[str, str]]:
    return [("Practitioner", _name(r)),
            ("Identifier", ", ".join(str(i.get("value", "")) for i in r.get("identifier") or []))]


def _organization(r: dict[str, Any]) -> list[tuple[str, str]]:
    return [("Organization", str(r.get("name", ""))),
            ("Identifier", ", ".join(str(i.get("value", "")) for i in r.get("identifier") or []))]


def _encounter(r: dict[str, Any]) -> list[tuple[str, str]]:
    return [("Encounter", ", ".join(concept(t) for t in r.get("type") or [])),
            ("Class", str((r.get("class") or {}).get("display", ""))),
            ("Status", str(r.get("status", ""))), ("Period", _period(r, ""))]


_LINES: dict[str, Callable[[dict[str, Any]], list[tuple[str, str]]]] = {
    "Procedure": _procedure, "Condition": _condition, "Observation": _observation,
    "Patient": _patient, "Practitioner": _practitioner, "Organization": _organization,
    "Encounter": _encounter,
}


def narrative_lines(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, words) pairs of a resource, empty words left out."""
    make = _LINES.get(str(resource.get("resourceType")))
    lines = make(resource) if make else [(str(resource.get("resourceType")), "")]
    kept = [(label, kept) for label, words in lines if words and (kept := words.strip())]
    return kept or [(str(resource.get("resourceType", "Resource")), "no details")]


#: The characters ``html.escape`` replaces: text without them is written as it is.
_HTML_SPECIAL = re.compile("[&<>\"']")


def _html(text: str) -> str:
    return escape(text) if _HTML_SPECIAL.search(text) else text


@lru_cache(maxsize=256)
def _label(label: str) -> str:
    """A line's label, escaped (the labels are a few constants: escaped once each)."""
    return _html(label)


def narrative(resource: dict[str, Any]) -> dict[str, str]:
    """The ``text`` element of a resource: status generated and its XHTML div."""
    items = "".join([f"<li><b>{_label(label)}</b>: {_html(words)}</li>"
                     for label, words in narrative_lines(resource)])
    return {"status": "generated", "div": f'<div xmlns="{XHTML}"><ul>{items}</ul></div>'}


def with_narratives(bundle: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Bundle whose entries' resources carry a generated narrative (those with one
    already keep theirs)."""
    out = copy.deepcopy(bundle)
    for entry in out.get("entry") or []:
        resource = entry.get("resource")
        if isinstance(resource, dict):
            entry["resource"] = with_text(resource)
    return out


def with_text(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with its generated narrative, placed after ``meta``/``implicitRules``/
    ``language`` (the R4 element order); a resource with a narrative keeps it."""
    if "text" in resource:
        return resource
    text = narrative(resource)
    out: dict[str, Any] = {}
    head = ("resourceType", "id", "meta", "implicitRules", "language")
    for key in head:
        if key in resource:
            out[key] = resource[key]
    out["text"] = text
    out.update(resource)  # the head keys keep their places (and values), the others follow
    return out


__all__ = ["XHTML", "concept", "narrative", "narrative_lines", "with_narratives", "with_text"]
