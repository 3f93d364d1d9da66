"""In-memory FHIR R4 search matchers for the few parameters the facade supports today.

https://hl7.org/fhir/R4/search.html#date, #token, #reference
"""

from __future__ import annotations

import re
from typing import Any

DATE_PATHS = {
    "Procedure": ("performedPeriod.start", "performedDateTime"),
    "Observation": ("effectiveDateTime",),
    "Condition": ("recordedDate", "onsetDateTime"),
    "Encounter": ("period.start",),
}
_PREFIXES = ("eq", "ne", "ge", "gt", "le", "lt")


def _get(resource: dict[str, Any], dotted: str) -> Any:
    node: Any = resource
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _token(param: str) -> tuple[str | None, str]:
    if "|" in param:
        system, _, value = param.partition("|")
        return system, value
    return None, param


def matches_identifier(resource: dict[str, Any], param: str) -> bool:
    """``identifier=[system|]value`` (token search)."""
    system, value = _token(param)
    return any(
        i.get("value") == value and (system is None or i.get("system") == system)
        for i in resource.get("identifier") or []
    )


def matches_code(resource: dict[str, Any], param: str) -> bool:
    """``code=[system|]code`` against ``Resource.code.coding``."""
    system, code = _token(param)
    codings = (resource.get("code") or {}).get("coding") or []
    return any(
        c.get("code") == code and (system is None or c.get("system") == system) for c in codings
    )


def patient_reference(param: str) -> str:
    """The literal reference a ``patient`` / ``subject`` value means (``Patient/id`` or bare id)."""
    return param if "/" in param else f"Patient/{param}"


def matches_patient(resource: dict[str, Any], param: str) -> bool:
    """``patient`` / ``subject`` = ``Patient/id`` or a bare id."""
    wanted = patient_reference(param)
    if resource.get("resourceType") == "Patient":
        return f"Patient/{resource.get('id')}" == wanted
    return (resource.get("subject") or {}).get("reference") == wanted


def split_date_param(param: str) -> tuple[str, str]:
    """``ge2025-05-01`` -> ("ge", "2025-05-01"); raises ValueError for a bad prefix or value."""
    prefix = param[:2] if param[:2].isalpha() else "eq"
    value = param[2:] if param[:2].isalpha() else param
    if prefix not in _PREFIXES or not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
        raise ValueError(f"unsupported date search value '{param}'")
    return prefix, value


def matches_date(resource: dict[str, Any], param: str) -> bool:
    """Date search on the resource's clinical date (its local calendar date, as recorded),
    compared at the precision of the parameter (YYYY, YYYY-MM or YYYY-MM-DD)."""
    prefix, value = split_date_param(param)
    for path in DATE_PATHS.get(resource.get("resourceType", ""), ()):
        found = _get(resource, path)
        if isinstance(found, str):
            return _compare(found[: len(value)], value, prefix)
    return False


def _compare(left: str, right: str, prefix: str) -> bool:
    return {
        "eq": left == right,
        "ne": left != right,
        "ge": left >= right,
        "gt": left > right,
        "le": left <= right,
        "lt": left < right,
    }[prefix]


SEARCHES = {
    "identifier": matches_identifier,
    "code": matches_code,
    "patient": matches_patient,
    "subject": matches_patient,
    "date": matches_date,
}


__all__ = [
    "SEARCHES",
    "matches_code",
    "matches_date",
    "matches_identifier",
    "matches_patient",
    "patient_reference",
    "split_date_param",
]
