"""The IASTM session Procedure -> record fields (docs/decisions.md#round-trip,
docs/mapping.md#procedure read backwards).

Laterality only from the mCODE extension, technique only from the technique extension, version only
from ``source-record-version``: nothing is guessed.
"""

from __future__ import annotations

from typing import Any

from fhir_iastm.errors import Issue, MappingError
from fhir_iastm.mapping.codes import STATUS_FROM_PROCEDURE, reverse_table, unmapped
from fhir_iastm.mapping.condition import laterality_of
from fhir_iastm.mapping.datatypes import Json, ext_all, ext_value, prune

WHERE = "Procedure"
CPT = "http://www.ama-assn.org/go/cpt"


def missing(path: str, what: str) -> MappingError:
    """E_REQUIRED at a FHIRPath."""
    return MappingError(
        f"{path}: missing {what}",
        [Issue("error", "required", path, f"missing {what}", "E_REQUIRED")],
    )


def _ext(proc: Json, base: str, name: str, value_type: str, required: bool = False) -> Any:
    url = f"{base}/StructureDefinition/{name}"
    value = ext_value(proc, url, value_type)
    if value is None and required:
        raise missing(f"{WHERE}.extension('{url}')", f"extension {name}")
    return value


def _decode(base: str, table: str, concept: Json | None, where: str) -> str:
    """The internal value of the first coding of ``concept`` found in ``table``'s reverse."""
    lookup = reverse_table(base, table)
    codings = (concept or {}).get("coding", ())
    for coding in codings:
        value = lookup.get((coding.get("system"), coding.get("code")))
        if value is not None:
            return value
    raise unmapped(table, [c.get("code") for c in codings] or None, where)


def read_status(proc: Json) -> str:
    """completed / entered-in-error / not-done -> record status; anything else E_CODE_UNKNOWN."""
    status = proc.get("status")
    if status not in STATUS_FROM_PROCEDURE:
        path = f"{WHERE}.status"
        raise MappingError(
            f"{path}: unsupported status {status!r}",
            [
                Issue(
                    "error",
                    "code-invalid",
                    path,
                    f"Procedure.status {status!r} has "
                    "no record status (completed, entered-in-error, not-done)",
                    "E_CODE_UNKNOWN",
                )
            ],
        )
    return STATUS_FROM_PROCEDURE[status]


def from_procedure(proc: Json, base: str) -> Json:
    """Envelope, technique, session counters, sites, instruments, adverse effects, notes."""
    technique = _ext(proc, base, "iastm-technique", "CodeableConcept", required=True)
    t_where = f"{WHERE}.extension('{base}/StructureDefinition/iastm-technique')"
    sites = [
        site_of(s, base, f"{WHERE}.bodySite[{i}]") for i, s in enumerate(proc.get("bodySite", ()))
    ]
    notes = [n["text"] for n in proc.get("note", ()) if n.get("text")]
    return prune(
        {
            "record_version": _ext(
                proc, base, "source-record-version", "PositiveInt", required=True
            ),
            "status": read_status(proc),
            "status_reason": (proc.get("statusReason") or {}).get("text"),
            "notes": "\n\n".join(notes) or None,
            "session": prune(
                {
                    "session_number": _ext(proc, base, "iastm-session-number", "PositiveInt"),
                    "planned_sessions": _ext(proc, base, "iastm-planned-sessions", "PositiveInt"),
                    "plan_of_care_id": _plan_of_care(proc, base),
                    "iastm_minutes": (_ext(proc, base, "iastm-duration", "Duration") or {}).get(
                        "value"
                    ),
                }
            ),
            "technique": prune(
                {
                    "code": _decode(base, "technique", technique, t_where),
                    "text": technique.get("text"),
                }
            ),
            "instruments": [
                {"code": _decode(base, "instrument", c, f"{WHERE}.usedCode[{i}]")}
                for i, c in enumerate(proc.get("usedCode", ()))
            ],
            "treatment_sites": sites,
            "iastm_parameters": _parameters(proc, base),
            "billing": _billing(proc, base),
            "adverse_effects": [
                _effect(c, base, f"{WHERE}.complication[{i}]", sites)
                for i, c in enumerate(proc.get("complication", ()))
            ],
        }
    )


def _parameters(proc: Json, base: str) -> Json | None:
    """iastm_parameters from the iastm-stroke / -pressure / -tolerance extensions."""

    def read(name: str) -> list[str]:
        url = f"{base}/StructureDefinition/iastm-{name}"
        return [
            _decode(base, f"iastm_{name}", e.get("valueCodeableConcept"), f"{WHERE}.extension")
            for e in ext_all(proc, url)
        ]

    strokes, pressure, tolerance = read("stroke"), read("pressure"), read("tolerance")
    for name, values in (("pressure", pressure), ("tolerance", tolerance)):
        if len(values) > 1:
            where = f"{WHERE}.extension('{base}/StructureDefinition/iastm-{name}')"
            raise MappingError(
                f"{where}: {len(values)} values, at most 1",
                [Issue("error", "structure", where, f"more than one {name}", "E_DUPLICATE_KEY")],
            )
    found = prune({"strokes": strokes, "pressure": pressure, "tolerance": tolerance})
    if not found:
        return None
    return {**found, **{k: v[0] for k, v in found.items() if k != "strokes"}}


def _billing(proc: Json, base: str) -> Json | None:
    """billing.cpt_lines from the CPT codings (include_cpt) and their units extension."""
    lines = []
    url = f"{base}/StructureDefinition/iastm-cpt-units"
    for i, coding in enumerate((proc.get("code") or {}).get("coding") or []):
        if coding.get("system") != CPT:
            continue
        units = ext_value(coding, url, "PositiveInt")
        if units is None:
            raise missing(f"{WHERE}.code.coding[{i}].extension('{url}')", "CPT units")
        lines.append({"code": coding.get("code"), "units": units})
    return {"cpt_lines": lines} if lines else None


def _plan_of_care(proc: Json, base: str) -> str | None:
    for ref in proc.get("basedOn", ()):
        ident = ref.get("identifier") or {}
        if ident.get("system") == f"{base}/sid/plan-of-care":
            return ident.get("value")
    return None


def site_of(site: Json, base: str, where: str) -> Json:
    """A bodySite -> {site, laterality}: site from the local coding, side from mCODE only."""
    return {
        "site": _decode(base, "body_site_local", site, where),
        "laterality": laterality_of(site, base, where),
    }


def _effect(concept: Json, base: str, where: str, sites: list[Json]) -> Json:
    severity_url = f"{base}/StructureDefinition/iastm-adverse-effect-severity"
    severity = ext_value(concept, severity_url, "CodeableConcept")
    if severity is None:
        raise missing(f"{where}.extension('{severity_url}')", "adverse-effect severity")
    site = ext_value(
        concept, f"{base}/StructureDefinition/iastm-adverse-effect-site", "CodeableConcept"
    )
    index = None
    if site is not None:
        key = site_of(site, base, f"{where}.extension('iastm-adverse-effect-site')")
        if key not in sites:
            raise MappingError(
                f"{where}: adverse-effect site is not a Procedure.bodySite",
                [
                    Issue(
                        "error",
                        "value",
                        where,
                        "the adverse-effect site matches no bodySite",
                        "E_REF",
                    )
                ],
            )
        index = sites.index(key)
    return prune(
        {
            "type": _decode(base, "adverse_effect", concept, where),
            "severity": _decode(
                base, "adverse_severity", severity, f"{where}.extension('{severity_url}')"
            ),
            "site_index": index,
            "expected": ext_value(
                concept, f"{base}/StructureDefinition/iastm-adverse-effect-expected", "Boolean"
            ),
        }
    )


__all__ = ["from_procedure", "missing", "read_status", "site_of"]
