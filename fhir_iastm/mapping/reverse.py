"""FHIR -> internal record (docs/decisions.md#round-trip, docs/decisions.md#d11).

Accepts a transaction Bundle, a searchset Bundle (server ids, ``Patient/123`` references) or a list
of resources; finds exactly one Procedure with the ``{C}/sid/iastm-session`` identifier; finishes
with ``records.load_record`` so the result obeys the same contract as a submitted record.
"""

from __future__ import annotations

from typing import Any

from fhir_iastm.errors import Issue, MappingError
from fhir_iastm.mapping import ids
from fhir_iastm.mapping.adjunct import from_adjunct
from fhir_iastm.mapping.codes import reverse_table, tables, unmapped
from fhir_iastm.mapping.condition import from_condition
from fhir_iastm.mapping.datatypes import Json, code_in, ext_value, identifier_value, prune
from fhir_iastm.mapping.effect import from_effect, is_effect_observation
from fhir_iastm.mapping.encounter import contained_conditions, primary_references, visit_kind
from fhir_iastm.mapping.index import Index
from fhir_iastm.mapping.observation import from_prom, from_rom, pain_value, read_timing
from fhir_iastm.mapping.parties import from_organization, from_patient, from_practitioner
from fhir_iastm.mapping.procedure_reverse import from_procedure, missing, site_of
from fhir_iastm.mapping.screening import from_screening, is_screening_observation
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.mapping.structure import check_resource
from fhir_iastm.records.model import SessionRecord

LOINC = "http://loinc.org"


def from_fhir(
    data: dict[str, Any] | list[dict[str, Any]], settings: MappingSettings | None = None
) -> SessionRecord:
    """One session's resources -> a validated SessionRecord (MappingError / InvalidRecordError)."""
    from fhir_iastm.records import load_record  # lazy: records loads the ICD-10-CM table

    return load_record(record_dict(data, settings))


def record_dict(data: Any, settings: MappingSettings | None = None) -> Json:
    """The unvalidated record dict read from FHIR (``from_fhir`` without the final validation).

    Every resource is first parsed once with its R4B model, so malformed input is reported at its
    FHIRPath; anything the mapper still cannot read becomes a MappingError, never a crash.
    """
    base = (settings or MappingSettings()).base
    index = Index.build(data)
    issues = [
        i
        for r, root in zip(index.resources, index.roots, strict=True)
        for i in check_resource(r, root)
    ]
    if issues:
        raise MappingError(f"malformed FHIR input ({len(issues)} structural issues)", issues)
    try:
        return _record_dict(index, base)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # module boundary
        message = f"cannot map the FHIR input back: {type(exc).__name__}: {exc}"
        raise MappingError(
            message, [Issue("error", "structure", None, message, "E_FORMAT")]
        ) from exc


def _record_dict(index: Index, base: str) -> Json:
    proc = session_procedure(index, base)
    session_id = str(identifier_value(proc, f"{base}/sid/iastm-session"))
    owned = _owned(index, base, session_id)
    _derive_full_urls(index, base, session_id, proc, owned)
    encounter = index.resolve(proc.get("encounter")) or owned.get("encounter")
    out = from_procedure(proc, base)
    eie = out["status"] == "entered-in-error"
    live = [(role, r) for role, r in owned.items() if eie or r.get("status") != "entered-in-error"]
    # the visit's time is the Encounter's (a 2.0 Procedure has its own part of it)
    period = (encounter or {}).get("period") or proc.get("performedPeriod") or {}
    out["session"] = {
        "start": period.get("start"),
        "end": period.get("end"),
        "duration_min": ((encounter or {}).get("length") or {}).get("value"),
        **out.get("session", {}),
    }
    out["visit_kind"] = visit_kind(encounter, base)
    out.update(_parties(index, proc, encounter, base))
    sites = out.get("treatment_sites") or []
    out["conditions"], out["recorded_at"] = _conditions(index, proc, encounter, owned, base, sites)
    recorded_url = f"{base}/StructureDefinition/source-recorded-at"
    out["recorded_at"] = out["recorded_at"] or ext_value(proc, recorded_url, "DateTime")
    observed = _observations(live, base, out.get("treatment_sites") or [])
    findings = observed.pop("findings")
    out.update(observed)
    out["adverse_effects"] = [*out.get("adverse_effects", []), *findings]
    out["adjunct_therapies"] = [
        from_adjunct(r, base, "Procedure")
        for role, r in live
        if role.startswith("adjunct/") and r.get("resourceType") == "Procedure"
    ]
    version = ext_value(proc, f"{base}/StructureDefinition/source-schema-version", "String")
    return prune({"schema_version": version or "1.0", "session_id": session_id, **out})


def session_procedure(index: Index, base: str) -> Json:
    """Exactly one Procedure carrying ``{C}/sid/iastm-session`` (else E_REQUIRED,
    docs/decisions.md#round-trip)."""
    system = f"{base}/sid/iastm-session"
    found = [p for p in index.of_type("Procedure") if identifier_value(p, system)]
    if len(found) != 1:
        where = "Procedure.identifier"
        raise MappingError(
            f"expected exactly one IASTM Procedure, found {len(found)}",
            [
                Issue(
                    "error",
                    "required",
                    where,
                    f"expected exactly one Procedure with an identifier "
                    f"of system {system}, found {len(found)}",
                    "E_REQUIRED",
                )
            ],
        )
    return found[0]


def _owned(index: Index, base: str, session_id: str) -> dict[str, Json]:
    """role -> resource for every resource keyed ``{session_id}/{role}``
    (docs/decisions.md#identifiers)."""
    system, prefix = f"{base}/sid/iastm-session-resource", f"{session_id}/"
    out: dict[str, Json] = {}
    for resource in index.resources:
        value = identifier_value(resource, system)
        if value and value.startswith(prefix):
            out[value[len(prefix) :]] = resource
    return out


def _derive_full_urls(
    index: Index, base: str, session_id: str, proc: Json, owned: dict[str, Json]
) -> None:
    """Bare resources (no fullUrl, no id) still resolve our urn:uuid references: recompute them."""
    roles = {**owned, "procedure": proc}
    for resource in index.resources:
        role = resource.get("resourceType", "").lower()
        if role in ("organization", "practitioner", "patient"):
            roles.setdefault(role, resource)
    for role, resource in roles.items():
        index.add_alias(ids.full_url(base, session_id, role), resource)


def _parties(index: Index, proc: Json, encounter: Json | None, base: str) -> Json:
    performer = (proc.get("performer") or [{}])[0]
    org_ref = performer.get("onBehalfOf") or (encounter or {}).get("serviceProvider")
    clinic = from_organization(
        index.one(org_ref, "Organization", "Procedure.performer[0].onBehalfOf"), base
    )
    return {
        "clinic": clinic,
        "therapist": from_practitioner(
            index.one(performer.get("actor"), "Practitioner", "Procedure.performer[0].actor"), base
        ),
        "patient": from_patient(
            index.one(proc.get("subject"), "Patient", "Procedure.subject"),
            base,
            clinic.get("clinic_id"),
        ),
    }


def _conditions(
    index: Index,
    proc: Json,
    encounter: Json | None,
    owned: dict[str, Json],
    base: str,
    sites: list[Json],
) -> tuple[list[Json], str | None]:
    """The Procedure's reasonReference targets (else every owned Condition, else the Conditions
    contained in the Encounter) and recordedDate."""
    refs = proc.get("reasonReference") or []
    found = [index.resolve(r) for r in refs]
    if not refs or any(c is None for c in found):
        found = [r for role, r in owned.items() if role.startswith("condition/")]
    contained = contained_conditions(encounter)  # docs/decisions.md#cancelled-conditions
    if not found:
        found = list(contained.values())
    primary = {
        id(contained.get(ref) or index.resolve({"reference": ref}))
        for ref in primary_references(encounter)
    }
    conditions = [
        prune(
            {
                **from_condition(c, base, "Condition", id(c) in primary),
                "site_index": _site_index(c, sites, base),
            }
        )
        for c in found
        if c
    ]
    recorded = next((c.get("recordedDate") for c in found if c and c.get("recordedDate")), None)
    return conditions, recorded


def _site_index(condition: Json, sites: list[Json], base: str) -> int | None:
    """The treated site a Condition's bodySite names (local site coding), as ``site_index``
    (docs/clinical.md#condition-site); a side-only bodySite links nothing."""
    site = (condition.get("bodySite") or [{}])[0]
    if code_in(site, tables(base)["body_site_local"]["knee"][0]["system"]) is None:
        return None
    key = site_of(site, base, "Condition.bodySite[0]")
    if key not in sites:
        where = "Condition.bodySite[0]"
        raise MappingError(
            f"{where}: not a treated site",
            [Issue("error", "value", where, "matches no Procedure.bodySite", "E_REF")],
        )
    return sites.index(key)


def _prom_instrument(code: Json, prom_codes: dict[tuple[str, str], str]) -> str | None:
    """The instrument of a PROM code (LOINC where verified, else our local code)."""
    for coding in code.get("coding") or []:
        found = prom_codes.get((coding.get("system"), coding.get("code")))
        if found:
            return found
    return None


def _observations(live: list[tuple[str, Json]], base: str, sites: list[Json]) -> Json:
    """pain / rom / outcome_measures from the session's Observations, classified by code."""
    pain: Json = {}
    rom: list[Json] = []
    proms: list[Json] = []
    findings: list[Json] = []
    screening: Json | None = None
    obs_system = tables(base)["prom_code"]["LEFS"][0]["system"]
    rom_codes, prom_codes = reverse_table(base, "rom_code"), reverse_table(base, "prom_code")
    for _role, r in live:
        if r.get("resourceType") != "Observation":
            continue
        code = r.get("code") or {}
        local = code_in(code, obs_system) or ""
        if code_in(code, LOINC) == "72514-3":
            timing = read_timing(r, base, "Observation")
            if timing in pain:
                raise MappingError(
                    "two pain Observations with the same timing",
                    [
                        Issue(
                            "error",
                            "duplicate",
                            "Observation",
                            f"two {timing} pain scores",
                            "E_DUPLICATE_KEY",
                        )
                    ],
                )
            pain[timing] = pain_value(r)
        elif (obs_system, local) in rom_codes:
            rom.append(from_rom(r, base, "Observation", rom_codes[(obs_system, local)]))
        elif _prom_instrument(code, prom_codes):
            proms.append(from_prom(r, str(_prom_instrument(code, prom_codes))))
        elif is_effect_observation(r, base):
            findings.append(from_effect(r, base, "Observation", sites))
        elif is_screening_observation(r, base) and screening is None:
            screening = from_screening(r, base, "Observation")
        else:
            raise unmapped("observation code", local or code.get("text"), "Observation.code")
    return {
        "pain": {"scale": "NRS-11", **pain} if pain else None,
        "rom": rom,
        "outcome_measures": proms,
        "findings": findings,
        "screening": screening,
    }


__all__ = ["from_fhir", "missing", "record_dict", "session_procedure"]
