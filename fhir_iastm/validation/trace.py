"""Core: trace an issue on a mapped resource back to the internal-record field that produced it.

Layer: core (standard library). The resource's role comes from its business identifier
(MAPPING §2.2: ``{CANON}/sid/iastm-session-resource|{session_id}/{role}``) or, for the shared
resources, its type. ``ROLE_FIELDS`` is the declarative table: per role, rows of
(FHIRPath tail regex, record path template); the first matching row wins. Keyed arrays use
FHIRPath-style selectors, e.g. ``conditions.where(condition_id='DX-1').icd10cm``.
"""

from __future__ import annotations

import re
from typing import Any

_SESSION_RESOURCE = "/sid/iastm-session-resource"
_ICD = "http://hl7.org/fhir/sid/icd-10-cm"

Rows = tuple[tuple[str, str], ...]

#: Extension URL (last path segment) -> record path template.
EXT_FIELDS: dict[str, str] = {
    "iastm-technique": "technique",
    "iastm-session-number": "session.session_number",
    "iastm-planned-sessions": "session.planned_sessions",
    "iastm-duration": "{base}.minutes",
    "iastm-measurement-timing": "{base}.timing",
    "iastm-rom-mode": "{base}.mode",
    "iastm-adverse-effect-severity": "{base}.severity",
    "iastm-adverse-effect-expected": "{base}.expected",
    "iastm-adverse-effect-site": "{base}.site_index",
    "source-record-version": "record_version",
    "source-record-hash": "record_version",
    "mcode-laterality-qualifier": "{base}.laterality",
    "mcode-body-location-qualifier": "{base}.site",
}

#: role regex (on the identifier value after ``{session_id}/``) -> (base template, rows).
ROLE_FIELDS: tuple[tuple[str, str, Rows], ...] = (
    (
        r"procedure$",
        "",
        (
            (r"bodySite\[(?P<i>\d+)\]", "treatment_sites[{i}]"),
            (r"complication\[(?P<i>\d+)\]", "adverse_effects[{i}]"),
            (r"usedCode\[(?P<i>\d+)\]", "instruments[{i}]"),
            (r"performedPeriod\.start", "session.start"),
            (r"performedPeriod\.end", "session.end"),
            (r"performed", "session"),
            (r"statusReason", "status_reason"),
            (r"status", "status"),
            (r"reason", "conditions"),
            (r"note", "notes"),
            (r"subject", "patient"),
            (r"performer", "therapist"),
            (r"basedOn", "session.plan_of_care_id"),
            (r"identifier", "session_id"),
            (r"code", "technique"),
            (r"", "session_id"),
        ),
    ),
    (
        r"condition/(?P<cid>.+)$",
        "conditions.where(condition_id='{cid}')",
        (
            (r"code\.coding\[\d+\]", "{base}.{coding_field}"),
            (r"code\.text", "{base}.text"),
            (r"code", "{base}.icd10cm"),
            (r"bodySite", "{base}.laterality"),
            (r"clinicalStatus", "{base}.clinical_status"),
            (r"verificationStatus", "{base}.verification_status"),
            (r"onset", "{base}.onset_date"),
            (r"recordedDate", "recorded_at"),
            (r"", "{base}"),
        ),
    ),
    (
        r"obs/pain-(?P<t>pre|post)$",
        "pain.{t}",
        (
            (r"effective", "session.{when}"),
            (r"", "{base}"),
        ),
    ),
    (
        r"obs/rom/(?P<joint>[a-z]+)-(?P<motion>.+)-(?P<lat>[a-z]+)-(?P<mode>[a-z]+)-(?P<t>[a-z]+)$",
        "rom.where(joint='{joint}' and motion='{motion}' and laterality='{lat}' and mode='{mode}' "
        "and timing='{t}')",
        (
            (r"value", "{base}.degrees"),
            (r"bodySite", "{base}.laterality"),
            (r"method", "{base}.method"),
            (r"code", "{base}.motion"),
            (r"effective", "{base}.timing"),
            (r"", "{base}"),
        ),
    ),
    (
        r"obs/prom/(?P<inst>.+)$",
        "outcome_measures.where(instrument='{inst}')",
        (
            (r"value", "{base}.score"),
            (r"component\[(?P<i>\d+)\]", "{base}.items[{i}]"),
            (r"", "{base}"),
        ),
    ),
    (
        r"adjunct/(?P<type>.+)$",
        "adjunct_therapies.where(type='{type}')",
        (
            (r"code\.text", "{base}.text"),
            (r"code", "{base}.type"),
            (r"", "{base}"),
        ),
    ),
    (
        r"encounter$",
        "session",
        (
            (r"period\.start", "session.start"),
            (r"period\.end", "session.end"),
            (r"diagnosis", "conditions"),
            (r"status", "status"),
            (r"", "session"),
        ),
    ),
)

#: Resource-level invariant key -> record path template (an invariant sits on the resource root,
#: so its location alone does not say which field broke it).
RULE_FIELDS: dict[str, str] = {
    "iastm-proc-1": "session.end",
    "iastm-proc-2": "technique",
    "iastm-proc-3": "status_reason",
    "iastm-proc-4": "treatment_sites",
    "iastm-proc-5": "session_id",
    "iastm-proc-6": "session.session_number",
    "iastm-proc-7": "conditions",
    "iastm-proc-8": "adverse_effects",
    "iastm-proc-9": "session.end",
    "us-core-7": "session.end",
    "iastm-proc-10": "treatment_sites",
    "iastm-cond-1": "{base}.icd10cm",
    "iastm-cond-2r": "{base}.laterality",
    "iastm-cond-2l": "{base}.laterality",
    "iastm-cond-2b": "{base}.laterality",
    "iastm-cond-3": "{base}.icd10cm",
    "iastm-cond-4": "{base}.laterality",
    "con-5": "{base}.clinical_status",
    "con-3": "{base}.clinical_status",
}

#: Shared resources: type -> rows.
TYPE_FIELDS: dict[str, Rows] = {
    "Patient": (
        (r"identifier", "patient.mrn"),
        (r"name", "patient.family_name"),
        (r"gender", "patient.gender"),
        (r"birthDate", "patient.birth_date"),
        (r"telecom", "patient.phone"),
        (r"address", "patient.address"),
        (r"", "patient"),
    ),
    "Practitioner": (
        (r"identifier", "therapist.npi"),
        (r"name", "therapist.family_name"),
        (r"qualification", "therapist.license_number"),
        (r"", "therapist"),
    ),
    "Organization": (
        (r"identifier", "clinic"),
        (r"name", "clinic.name"),
        (r"address", "clinic.address"),
        (r"telecom", "clinic.phone"),
        (r"", "clinic"),
    ),
}


def _role(resource: dict[str, Any]) -> str | None:
    identifiers = resource.get("identifier")
    for ident in identifiers if isinstance(identifiers, list) else []:
        if isinstance(ident, dict) and str(ident.get("system", "")).endswith(_SESSION_RESOURCE):
            value = str(ident.get("value", ""))
            return value.split("/", 1)[1] if "/" in value else None
    return None


def _variables(resource: dict[str, Any], tail: str, groups: dict[str, str]) -> dict[str, str]:
    out = dict(groups)
    out["when"] = "start" if groups.get("t") == "pre" else "end"
    located = re.match(r"code\.coding\[(\d+)\]", tail)
    if located:
        code = resource.get("code")
        codings = code.get("coding") if isinstance(code, dict) else None
        i = int(located.group(1))
        coding = codings[i] if isinstance(codings, list) and i < len(codings) else None
        system = coding.get("system") if isinstance(coding, dict) else None
        out["coding_field"] = "icd10cm" if system == _ICD else "snomed"
    return out


def _extension_field(resource: dict[str, Any], tail: str) -> str | None:
    """The template for ``...extension[i]`` when the extension URL is a known one."""
    match = re.search(r"extension\[(\d+)\]", tail)
    if match is None:
        return None
    owner: Any = resource
    for step in re.findall(r"(\w+)(?:\[(\d+)\])?\.", tail[: match.start()] + "."):
        owner = owner.get(step[0]) if isinstance(owner, dict) else None
        if isinstance(owner, list):
            owner = owner[int(step[1] or 0)] if owner else None
    extensions = owner.get("extension") if isinstance(owner, dict) else None
    i = int(match.group(1))
    if not isinstance(extensions, list) or i >= len(extensions):
        return None
    url = str(extensions[i].get("url", "")) if isinstance(extensions[i], dict) else ""
    return EXT_FIELDS.get(url.rsplit("/", 1)[-1])


def record_field(
    resource: dict[str, Any], expression: str | None, rule: str | None = None
) -> str | None:
    """The record path for an issue at ``expression`` (relative to the resource), or None."""
    if expression is None:
        return None
    tail = expression.partition(".")[2]
    if not tail and rule in RULE_FIELDS:
        return _by_rule(resource, RULE_FIELDS[rule])
    role = _role(resource)
    if role is None:
        rows = TYPE_FIELDS.get(str(resource.get("resourceType")))
        return _first(rows, tail, {}, "", resource) if rows else None
    for pattern, base, rows in ROLE_FIELDS:
        match = re.match(pattern, role)
        if match:
            variables = _variables(resource, tail, match.groupdict())
            return _first(rows, tail, variables, base.format(**variables), resource)
    return None


def _by_rule(resource: dict[str, Any], template: str) -> str | None:
    role = _role(resource)
    for pattern, base, _rows in ROLE_FIELDS:
        match = re.match(pattern, role or "")
        if match:
            variables = _variables(resource, "", match.groupdict())
            return template.format(**variables, base=base.format(**variables))
    return None


def _first(
    rows: Rows, tail: str, variables: dict[str, str], base: str, resource: dict[str, Any]
) -> str | None:
    site = _extension_field(resource, tail) if "extension[" in tail else None
    for pattern, template in rows:
        match = re.match(pattern, tail)
        if match:
            scope = {**variables, **match.groupdict(), "base": base}
            if site is not None:
                owner = template.format(**scope) if pattern else base
                return site.format(**{**scope, "base": owner or base}) or None
            return template.format(**scope) or None
    return None


__all__ = ["EXT_FIELDS", "ROLE_FIELDS", "RULE_FIELDS", "TYPE_FIELDS", "record_field"]
