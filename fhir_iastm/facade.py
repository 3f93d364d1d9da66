"""Core: turn a mapped transaction Bundle into stored-style resources for the FHIR facade.

Layer: core (standard library only). The facade serves what ``mapping.to_fhir`` builds, but as a
server would hold it: every resource gets a stable logical ``id`` derived from its business key
(the conditional ``request.url`` / ``ifNoneExist`` of its entry), and ``urn:uuid:`` references are
rewritten to literal ``Type/id`` references. The same Patient (same clinic and MRN) therefore has
the same id in every session.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

_NAMESPACE = uuid.UUID("5b0c8f0e-2a4e-4c55-9a9e-6f1b8d3f7a11")


def business_key(entry: dict[str, Any]) -> str:
    """The entry's business key: its conditional query, else its fullUrl."""
    request = entry.get("request") or {}
    resource_type = entry["resource"]["resourceType"]
    if request.get("ifNoneExist"):
        return f"{resource_type}?{request['ifNoneExist']}"
    url = request.get("url") or ""
    if "?" in url:
        return url
    return entry.get("fullUrl") or f"{resource_type}/{url}"


def logical_id(key: str) -> str:
    """Stable logical id for a business key (lower-case RFC 4122 uuid5)."""
    return str(uuid.uuid5(_NAMESPACE, key))


def _rewrite(node: Any, refs: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in refs:
            node["reference"] = refs[ref]
        for value in node.values():
            _rewrite(value, refs)
    elif isinstance(node, list):
        for value in node:
            _rewrite(value, refs)


def stored_resources(bundle: dict[str, Any], *, copy_: bool = True) -> list[dict[str, Any]]:
    """Resources of a transaction Bundle with logical ids and literal references (a deep copy;
    ``copy_=False`` rewrites the Bundle's own resources instead, for a Bundle nobody else holds)."""
    entries = bundle.get("entry") or []
    refs: dict[str, str] = {}
    ids: list[str] = []
    for entry in entries:
        rid = logical_id(business_key(entry))
        ids.append(rid)
        if entry.get("fullUrl"):
            refs[entry["fullUrl"]] = f"{entry['resource']['resourceType']}/{rid}"
    out = []
    for entry, rid in zip(entries, ids, strict=True):
        resource = copy.deepcopy(entry["resource"]) if copy_ else entry["resource"]
        resource["id"] = rid
        _rewrite(resource, refs)
        out.append(resource)
    return out




# --- search (FHIR R4 search semantics for the few parameters the facade supports) -------------
# https://hl7.org/fhir/R4/search.html#date, #token, #reference

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
    "business_key",
    "logical_id",
    "matches_code",
    "matches_date",
    "matches_identifier",
    "matches_patient",
    "patient_reference",
    "split_date_param",
    "stored_resources",
]
