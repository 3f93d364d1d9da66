"""Small builders and readers for FHIR R4 datatypes, so resource modules read like tables.

Builders return plain JSON dicts in FHIR element order and ``None`` for absent values; :func:`prune`
drops absent elements from a resource or element. See https://hl7.org/fhir/R4/datatypes.html.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_iastm.mapping.codes import Coding

Json = dict[str, Any]
UCUM = "http://unitsofmeasure.org"


def prune(element: Json) -> Json:
    """The element without ``None``, empty strings, lists and dicts (FHIR forbids empty elements).

    ``v or v == 0`` keeps every truthy value and the falsy numbers/booleans (0, 0.0, False).
    """
    return {k: v for k, v in element.items() if v or v == 0}


def codeable(
    codings: Iterable[Coding] = (), text: str | None = None, extension: list[Json] | None = None
) -> Json:
    """A CodeableConcept (``extension``, ``coding``, ``text``)."""
    return prune({"extension": extension, "coding": list(codings), "text": text})


def reference(url: str) -> Json:
    """A literal Reference to a Bundle entry's fullUrl."""
    return {"reference": url}


def identifier(system: str, value: str, type_: Coding | None = None) -> Json:
    """An Identifier (``type`` as a CodeableConcept when given)."""
    return prune({"type": codeable([type_]) if type_ else None, "system": system, "value": value})


def period(start: str | None, end: str | None) -> Json | None:
    """A Period; the record keeps the exact RFC 3339 text, so it is copied verbatim."""
    return prune({"start": start, "end": end}) or None


def quantity(value: int | float, unit: Coding) -> Json:
    """A UCUM Quantity (``value``, ``unit``, ``system``, ``code``); us-core-3."""
    return {"value": value, "unit": unit["unit"], "system": UCUM, "code": unit["code"]}


def extension(url: str, value_type: str, value: Any) -> Json | None:
    """An Extension with one ``value[x]`` (None when the value is absent)."""
    return None if value is None else {"url": url, f"value{value_type}": value}


def ext(url: str, value_type: str, value: Any) -> Json:
    """An Extension whose value is always present."""
    return {"url": url, f"value{value_type}": value}


def extensions(*items: Json | None) -> list[Json]:
    """The present extensions, in the given order."""
    return [e for e in items if e is not None]


def telecom(system: str, value: str | None, use: str | None = None) -> Json | None:
    """A ContactPoint (or None)."""
    return None if value is None else prune({"system": system, "value": value, "use": use})


# ---------------------------------------------------------------- readers


def ext_all(element: Json | None, url: str) -> list[Json]:
    """Every extension of ``element`` with this URL."""
    return [e for e in (element or {}).get("extension", ()) if e.get("url") == url]


def ext_value(element: Json | None, url: str, value_type: str) -> Any:
    """The ``value[x]`` of the first extension with this URL (None when absent)."""
    found = ext_all(element, url)
    return found[0].get(f"value{value_type}") if found else None


def codes_in(concept: Json | None, system: str) -> list[str]:
    """Every code of ``system`` in a CodeableConcept."""
    return [c["code"] for c in (concept or {}).get("coding", ()) if c.get("system") == system]


def code_in(concept: Json | None, system: str) -> str | None:
    """The first code of ``system`` in a CodeableConcept (None when absent)."""
    found = codes_in(concept, system)
    return found[0] if found else None


def identifier_value(resource: Json, system: str) -> str | None:
    """The value of the first identifier with this system."""
    for ident in resource.get("identifier", ()):
        if ident.get("system") == system:
            return ident.get("value")
    return None


__all__ = [
    "Json",
    "UCUM",
    "code_in",
    "codeable",
    "codes_in",
    "ext_all",
    "ext_value",
    "ext",
    "extension",
    "extensions",
    "identifier",
    "identifier_value",
    "period",
    "prune",
    "quantity",
    "reference",
    "telecom",
]
