"""The CapabilityStatement and the README's parameter table, both from ``facade.params``.

What it states is exactly what the facade implements: the interactions of every served type,
each search parameter with its type and definition, ``_include`` / ``_revinclude`` targets,
versioning and conditional reads, the formats, and how requests are secured.
"""

from __future__ import annotations

from typing import Any

from fhir_iastm import __version__
from fhir_iastm.facade.params import (
    DATE_PREFIXES,
    MODIFIERS,
    PARAMS,
    RESOURCE_TYPES,
    reference_params,
)
from fhir_iastm.facade.parse import DEFAULT_COUNT, MAX_COUNT, RESULT_PARAMS

CONFORMANCE_TYPES = ("StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap")
FORMATS = ("application/fhir+json", "application/json")
VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
INTERACTIONS = ("read", "vread", "history-instance", "search-type")
RELEASE_DATE = "2026-12-05"
BULK = "http://hl7.org/fhir/uv/bulkdata"
#: Bulk Data Access IG 2.0.0: the CapabilityStatement we instantiate and the export operations.
BULK_CAPABILITY = f"{BULK}/CapabilityStatement/bulk-data"
EXPORT_OPERATIONS = {"system": f"{BULK}/OperationDefinition/export",
                     "Patient": f"{BULK}/OperationDefinition/patient-export",
                     "Group": f"{BULK}/OperationDefinition/group-export"}


def _search_params(rtype: str) -> list[dict[str, Any]]:
    return [{"name": p.name, "definition": p.definition, "type": p.type}
            for p in PARAMS if p.resource in (rtype, "Resource")]


def _includes(rtype: str) -> tuple[list[str], list[str]]:
    includes = [f"{rtype}:{p.name}" for p in reference_params(rtype)]
    revincludes = [f"{source}:{p.name}" for source in RESOURCE_TYPES
                   for p in reference_params(source) if rtype in p.targets]
    return includes, revincludes


def _resource(rtype: str, profiles: list[str]) -> dict[str, Any]:
    includes, revincludes = _includes(rtype)
    entry: dict[str, Any] = {"type": rtype}
    if profiles:
        entry["supportedProfile"] = sorted(profiles)
    entry.update({
        "interaction": [{"code": code} for code in INTERACTIONS],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": False,
        "conditionalRead": "full-support",
        "searchInclude": includes,
        "searchRevInclude": revincludes,
        "searchParam": _search_params(rtype),
        "operation": [{"name": "validate", "definition": VALIDATE}],
    })
    if rtype in EXPORT_OPERATIONS:
        entry["operation"].append({"name": "export", "definition": EXPORT_OPERATIONS[rtype]})
    if not includes:
        del entry["searchInclude"]
    if not revincludes:
        del entry["searchRevInclude"]
    return entry


def _conformance(rtype: str) -> dict[str, Any]:
    params = [{"name": name, "definition": f"http://hl7.org/fhir/SearchParameter/{d}",
               "type": kind}
              for name, d, kind in (("_id", "Resource-id", "token"),
                                    ("url", "conformance-url", "uri"),
                                    ("version", "conformance-version", "token"),
                                    ("name", "conformance-name", "string"))]
    return {"type": rtype, "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": params}


def _group() -> dict[str, Any]:
    """Groups: one per clinic, read and searched by identifier, exported with ``$export``."""
    params = [{"name": "_id", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
               "type": "token"},
              {"name": "identifier", "type": "token",
               "definition": "http://hl7.org/fhir/SearchParameter/Group-identifier"}]
    return {"type": "Group", "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": params,
            "operation": [{"name": "export", "definition": EXPORT_OPERATIONS["Group"]}]}


def _audit_event() -> dict[str, Any]:
    """AuditEvents of the facade's reads: administrators only (docs/audit.md)."""
    defs = {"date": ("AuditEvent-date", "date"), "agent": ("AuditEvent-agent", "reference"),
            "altid": ("AuditEvent-altid", "token"), "entity": ("AuditEvent-entity", "reference"),
            "patient": ("AuditEvent-patient", "reference"), "_id": ("Resource-id", "token")}
    return {"type": "AuditEvent", "interaction": [{"code": "read"}, {"code": "search-type"}],
            "documentation": "The audit trail of reads, searches and exports of patient data "
                             "(BALP patterns); only an administrator token (scope 'admin', or "
                             "SMART system/AuditEvent.rs) may read it. 'agent' matches the "
                             "agent's altId, like 'altid'.",
            "searchParam": [{"name": n, "definition": f"http://hl7.org/fhir/SearchParameter/{d}",
                             "type": t} for n, (d, t) in defs.items()]}


def _security(secured: bool, smart: bool) -> dict[str, Any]:
    if smart:
        return {"cors": False, "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR"}]}], "description": (
            "SMART Backend Services: every request except /fhir/metadata and "
            "/fhir/.well-known/smart-configuration needs an access token from the token "
            "endpoint named there, with the SMART system scope of its interaction.")}
    return {"cors": False, "description": (
        "Every request except /fhir/metadata needs an 'Authorization: Bearer <token>' header "
        "with a token configured in IASTM_API_TOKENS (scope 'read')." if secured else
        "Open: no IASTM_API_TOKENS are configured (local use only).")}


def capability_statement(base: str, profiles_by_type: dict[str, list[str]],
                         secured: bool, smart: bool = False) -> dict[str, Any]:
    """The facade's CapabilityStatement (``secured``: bearer tokens are required; ``smart``:
    SMART Backend Services access tokens)."""
    return {
        "resourceType": "CapabilityStatement",
        "instantiates": [BULK_CAPABILITY],
        "status": "active",
        "date": RELEASE_DATE,
        "kind": "instance",
        "software": {"name": "fhir-iastm", "version": __version__},
        "implementation": {"description": "fhir-iastm FHIR facade", "url": base},
        "fhirVersion": "4.0.1",
        "format": list(FORMATS),
        "rest": [{
            "mode": "server",
            "documentation": f"Search results are paged with an opaque _cursor; _count defaults "
                             f"to {DEFAULT_COUNT} and is capped at {MAX_COUNT}. Unknown "
                             "parameters are ignored and reported (Prefer: handling=lenient, "
                             "the default) or rejected (handling=strict).",
            "security": _security(secured, smart),
            "resource": [_resource(t, profiles_by_type.get(t, [])) for t in RESOURCE_TYPES]
            + [_group(), _audit_event()] + [_conformance(t) for t in CONFORMANCE_TYPES],
            "operation": [{"name": "export", "definition": EXPORT_OPERATIONS["system"]}],
        }],
    }


def parameter_table() -> str:
    """The README's table of search parameters (Markdown), one row per type."""
    lines = ["| resource | parameter | type | definition |", "|---|---|---|---|"]
    for p in PARAMS:
        where = "every type" if p.resource == "Resource" else p.resource
        lines.append(f"| {where} | `{p.name}` | {p.type} | {p.definition} |")
    lines += [
        "",
        "Modifiers: " + "; ".join(f"{t}: " + ", ".join(f"`:{m}`" for m in mods)
                                  for t, mods in MODIFIERS.items())
        + "; reference: `:<TargetType>`.",
        "Date prefixes: " + ", ".join(f"`{p}`" for p in DATE_PREFIXES) + ".",
        "Result parameters: " + ", ".join(f"`{p}`" for p in RESULT_PARAMS) + ".",
        "`_include` / `_revinclude`: " + ", ".join(
            f"`{t}:{p.name}`" for t in RESOURCE_TYPES for p in reference_params(t)) + ".",
        f"`_count`: default {DEFAULT_COUNT}, maximum {MAX_COUNT}.",
    ]
    return "\n".join(lines) + "\n"


__all__ = ["BULK_CAPABILITY", "CONFORMANCE_TYPES", "EXPORT_OPERATIONS", "capability_statement",
           "parameter_table"]
