"""The required bindings of the base R4 specification, checked whatever a profile says.

A profile that does not re-declare a base element
still inherits its binding (HAPI checks it): ``Procedure.status = "bogus"`` is an error. This
table lists the **required** bindings of FHIR R4 4.0.1 on the elements of the resource types this
project reads and writes, and of the datatypes they use (Identifier, HumanName, ContactPoint,
Address, Quantity, Narrative); each element's binding is quoted from its definition page
(hl7.org/fhir/R4/<type>-definitions.html, datatypes-definitions.html). Codes of the ValueSets are
in ``bindings.BUILTIN_VALUE_SETS``. Rule id: ``binding:<element id>``, as for a profile binding
(the engine keeps one issue when both report).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_iastm.validation.bindings import BUILTIN_VALUE_SETS
from fhir_iastm.validation.context import ValidationContext

_VS = "http://hl7.org/fhir/ValueSet/"

#: datatype element -> ValueSet (R4 datatypes-definitions.html, narrative, quantity)
_DATATYPES: dict[str, dict[str, str]] = {
    "Identifier": {"use": "identifier-use"},
    "HumanName": {"use": "name-use"},
    "ContactPoint": {"system": "contact-point-system", "use": "contact-point-use"},
    "Address": {"use": "address-use", "type": "address-type"},
    "Quantity": {"comparator": "quantity-comparator"},
}
_CONTACTS = {"identifier": "Identifier", "telecom": "ContactPoint", "address": "Address"}
_PERSON = {**_CONTACTS, "name": "HumanName"}

#: resource type -> (own code elements with a required binding, datatype-typed elements)
_RESOURCES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "Procedure": ({"status": "event-status"}, {"identifier": "Identifier"}),
    "Observation": (
        {"status": "observation-status"},
        {
            "identifier": "Identifier",
            "valueQuantity": "Quantity",
            "component.valueQuantity": "Quantity",
        },
    ),
    "Condition": (
        {"clinicalStatus": "condition-clinical", "verificationStatus": "condition-ver-status"},
        {"identifier": "Identifier"},
    ),
    "Encounter": (
        {
            "status": "encounter-status",
            "statusHistory.status": "encounter-status",
            "location.status": "encounter-location-status",
        },
        {"identifier": "Identifier"},
    ),
    "Patient": (
        {
            "gender": "administrative-gender",
            "link.type": "link-type",
            "contact.gender": "administrative-gender",
        },
        {
            **_PERSON,
            "contact.name": "HumanName",
            "contact.telecom": "ContactPoint",
            "contact.address": "Address",
        },
    ),  # fmt: skip
    "Practitioner": ({"gender": "administrative-gender"}, _PERSON),
    "Organization": ({}, {**_CONTACTS, "contact.telecom": "ContactPoint"}),
    "Provenance": ({"entity.role": "provenance-entity-role"}, {}),
    "QuestionnaireResponse": (
        {"status": "questionnaire-answers-status"},
        {"identifier": "Identifier", "item.answer.valueQuantity": "Quantity"},
    ),
}


def required_bindings(resource_type: str) -> dict[str, str]:
    """Element path (from the resource) -> required ValueSet URL, for one resource type."""
    own, typed = _RESOURCES.get(resource_type, ({}, {}))
    out = {path: _VS + vs for path, vs in own.items()}
    out["text.status"] = _VS + "narrative-status"
    for path, datatype in typed.items():
        for element, vs in _DATATYPES[datatype].items():
            out[f"{path}.{element}"] = _VS + vs
    return out


def _values(node: Any, parts: list[str], where: str) -> Iterator[tuple[str, Any]]:
    if not parts:
        yield where, node
        return
    if not isinstance(node, dict) or parts[0] not in node:
        return
    child, rest = node[parts[0]], parts[1:]
    if isinstance(child, list):
        for i, item in enumerate(child):
            yield from _values(item, rest, f"{where}.{parts[0]}[{i}]")
    else:
        yield from _values(child, rest, f"{where}.{parts[0]}")


def _codes(value: Any) -> list[str] | None:
    """The codes of a code or CodeableConcept value; None when it is neither."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        codings = value.get("coding")
        if isinstance(codings, list):
            return [str(c.get("code")) for c in codings if isinstance(c, dict) and "code" in c]
    return None


def check_base_bindings(resource: dict[str, Any], ctx: ValidationContext) -> None:
    """An error for each value of a base required-bound element that is not in its ValueSet."""
    resource_type = str(resource.get("resourceType"))
    for path, url in required_bindings(resource_type).items():
        allowed = {code for _system, code in BUILTIN_VALUE_SETS[url]}
        for where, value in _values(resource, path.split("."), resource_type):
            codes = _codes(value)
            if codes is None or any(code in allowed for code in codes):
                continue
            shown = ", ".join(codes) or "no code"
            ctx.add(
                "error",
                "code-invalid",
                where,
                f"{shown} is not in ValueSet {url} (required binding of {resource_type}.{path}"
                " in the base specification)",
                f"binding:{resource_type}.{path}",
            )


__all__ = ["check_base_bindings", "required_bindings"]
