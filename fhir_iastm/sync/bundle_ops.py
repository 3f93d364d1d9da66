"""Reading and rewriting a mapped transaction Bundle for the push (docs/decisions.md#d6 to #d8).

Pure functions over the JSON dicts that ``mapping.to_fhir`` returns and that a FHIR server sends
back; no I/O. Spec: https://hl7.org/fhir/R4/bundle.html#transaction
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_iastm.errors import MappingError
from fhir_iastm.mapping import ids
from fhir_iastm.sync.ports import Json

CONDITION_VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
#: Session-owned resource types and the ``status`` element a retraction sets
#: (docs/decisions.md#statuses, docs/decisions.md#d8).
RETRACTABLE = ("Observation", "Procedure", "Condition", "Encounter")


@dataclass(frozen=True, slots=True)
class Systems:
    """The identifier systems and extension URLs of one canonical base."""

    session: str
    resource: str
    version_ext: str
    hash_ext: str

    @classmethod
    def of(cls, base: str) -> Systems:
        """Systems under ``{CANON}`` (``base`` without a trailing slash)."""
        return cls(
            session=ids.sid(base, "iastm-session"),
            resource=ids.sid(base, "iastm-session-resource"),
            version_ext=ids.sd(base, "source-record-version"),
            hash_ext=ids.sd(base, "source-record-hash"),
        )


def key(system: str, value: str) -> str:
    """A business identifier as ``system|value`` (the form LastPushed.identifiers keeps)."""
    return f"{system}|{value}"


def split_key(identifier: str) -> tuple[str, str]:
    """``system|value`` -> (system, value); the value may itself contain ``|``."""
    system, sep, value = identifier.partition("|")
    if not sep:
        raise ValueError(f"not a system|value identifier: {identifier[:40]!r}")
    return system, value


def session_entry_index(bundle: Mapping[str, Any], systems: Systems) -> int:
    """Index of the one entry holding the IASTM Procedure (``iastm-session`` identifier)."""
    found = [
        i
        for i, entry in enumerate(bundle.get("entry") or [])
        if is_session_procedure(entry.get("resource") or {}, systems)
    ]
    if len(found) != 1:
        raise MappingError(f"the Bundle holds {len(found)} IASTM session Procedures, expected 1")
    return found[0]


def is_session_procedure(resource: Mapping[str, Any], systems: Systems) -> bool:
    """True for a Procedure carrying the ``{CANON}/sid/iastm-session`` identifier."""
    return resource.get("resourceType") == "Procedure" and any(
        i.get("system") == systems.session for i in resource.get("identifier") or []
    )


def resource_keys(resource: Mapping[str, Any], systems: Systems) -> list[str]:
    """The session-owned business identifiers of a resource (``iastm-session-resource`` system)."""
    return [
        key(i["system"], i["value"])
        for i in resource.get("identifier") or []
        if i.get("system") == systems.resource and isinstance(i.get("value"), str)
    ]


def emitted_identifiers(bundle: Mapping[str, Any], systems: Systems) -> tuple[str, ...]:
    """Every session-owned identifier the Bundle writes (the base of the next retraction diff)."""
    out: set[str] = set()
    for entry in bundle.get("entry") or []:
        out.update(resource_keys(entry.get("resource") or {}, systems))
    return tuple(sorted(out))


def ext_value(resource: Mapping[str, Any], url: str) -> Any:
    """The ``value[x]`` of the first extension with this URL, or None."""
    for ext in resource.get("extension") or []:
        if ext.get("url") == url:
            return next((v for k, v in ext.items() if k.startswith("value")), None)
    return None


def source_version(resource: Mapping[str, Any], systems: Systems) -> int | None:
    """The ``source-record-version`` extension (docs/decisions.md#d7), or None."""
    value = ext_value(resource, systems.version_ext)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def source_hash(resource: Mapping[str, Any], systems: Systems) -> str | None:
    """The ``source-record-hash`` extension (docs/decisions.md#d7), or None."""
    value = ext_value(resource, systems.hash_ext)
    return value if isinstance(value, str) else None


def version_id(resource: Mapping[str, Any]) -> str | None:
    """``meta.versionId`` of a server resource."""
    value = (resource.get("meta") or {}).get("versionId")
    return str(value) if value is not None else None


def guarded_entry(entry: Mapping[str, Any], server: Mapping[str, Any]) -> Json:
    """The IASTM Procedure entry as ``PUT Procedure/{id}`` with ``ifMatch`` (docs/decisions.md#d7).

    HAPI ignores If-Match on a conditional PUT, so the resolved id is written instead; the
    ``fullUrl`` stays, so the other entries' ``urn:uuid`` references still resolve to it.
    """
    resource = dict(entry["resource"])
    resource["id"] = server["id"]
    request: Json = {"method": "PUT", "url": f"Procedure/{server['id']}"}
    vid = version_id(server)
    if vid is not None:
        request["ifMatch"] = f'W/"{vid}"'
    return {"fullUrl": entry["fullUrl"], "resource": resource, "request": request}


def with_entries(bundle: Mapping[str, Any], entries: list[Json]) -> Json:
    """A copy of the Bundle with these entries (other elements kept)."""
    out = {k: v for k, v in bundle.items() if k != "entry"}
    out["entry"] = entries
    return out


def retracted(resource: Mapping[str, Any]) -> Json:
    """A server resource marked ``entered-in-error`` (docs/decisions.md#statuses; con-5: no
    Condition.clinicalStatus).

    Its version extensions keep the version that wrote it, so the pull can tell that it is no
    longer part of the current record. Server-owned ``meta`` elements are dropped.
    """
    out = copy.deepcopy(dict(resource))
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k == "profile"}
    if meta:
        out["meta"] = meta
    if out.get("resourceType") == "Condition":
        out.pop("clinicalStatus", None)
        out["verificationStatus"] = {
            "coding": [
                {
                    "system": CONDITION_VER_STATUS,
                    "code": "entered-in-error",
                    "display": "Entered in Error",
                }
            ]
        }
    else:
        out["status"] = "entered-in-error"
    return out


def is_retracted(resource: Mapping[str, Any]) -> bool:
    """True when the resource is already ``entered-in-error``."""
    if resource.get("resourceType") == "Condition":
        codings = (resource.get("verificationStatus") or {}).get("coding") or []
        return any(c.get("code") == "entered-in-error" for c in codings)
    return resource.get("status") == "entered-in-error"


def retraction_entry(resource: Mapping[str, Any], full_url: str) -> Json:
    """``PUT Type/{id}`` with ``ifMatch`` of the read version, carrying the retracted resource."""
    rtype, rid = resource["resourceType"], resource["id"]
    request: Json = {"method": "PUT", "url": f"{rtype}/{rid}"}
    vid = version_id(resource)
    if vid is not None:
        request["ifMatch"] = f'W/"{vid}"'
    return {"fullUrl": full_url, "resource": retracted(resource), "request": request}


def location_of(answer: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(``Type/id``, version) from a transaction-response entry's ``response.location``."""
    location = str((answer.get("response") or {}).get("location") or "")
    path, _, version = location.partition("/_history/")
    parts = path.split("/")
    return ("/".join(parts[-2:]) if len(parts) >= 2 else None), (version or None)


def response_ids(sent: Iterable[Mapping[str, Any]], response: Mapping[str, Any]) -> dict[str, str]:
    """identifier (``system|value``) -> ``Type/id`` for every written entry (from ``location``)."""
    out: dict[str, str] = {}
    for entry, answer in zip(sent, response.get("entry") or [], strict=False):
        ref, _ = location_of(answer)
        if ref is None:
            continue
        for ident in (entry.get("resource") or {}).get("identifier") or []:
            if isinstance(ident.get("system"), str) and isinstance(ident.get("value"), str):
                out[key(ident["system"], ident["value"])] = ref
    return out


def rewrite_references(value: Any, old: str, new: str) -> Any:
    """``value`` with every ``{"reference": old}`` replaced by ``new`` (deep, returns a copy)."""
    if isinstance(value, dict):
        return {
            k: (new if k == "reference" and v == old else rewrite_references(v, old, new))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [rewrite_references(v, old, new) for v in value]
    return value


__all__ = [
    "RETRACTABLE",
    "Systems",
    "emitted_identifiers",
    "guarded_entry",
    "is_retracted",
    "is_session_procedure",
    "key",
    "location_of",
    "resource_keys",
    "response_ids",
    "retracted",
    "retraction_entry",
    "rewrite_references",
    "session_entry_index",
    "source_hash",
    "source_version",
    "split_key",
    "version_id",
    "with_entries",
]
