"""The search parameter table: every parameter the facade supports, as the R4 spec defines it.

One row per (resource type, parameter): its standard name, type, the R4 FHIRPath ``expression``
(the branch of the spec's SearchParameter expression for that resource type), the canonical URL of
the SearchParameter (``definition``) and, for references, the spec's target types. The index
(``facade.extract``), the search parser (``facade.parse``), the CapabilityStatement
(``facade.capability``) and the README's parameter table are all read from here.
``tests/facade/test_params_source.py`` proves every row equals the official R4 4.0.1 definitions
(``sp/search-parameters.json`` of ``ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4``).
"""

from __future__ import annotations

from dataclasses import dataclass

SP = "http://hl7.org/fhir/SearchParameter/"

#: The resource types the facade serves (read, vread, history, search).
RESOURCE_TYPES = ("Procedure", "Condition", "Observation", "Encounter", "Patient",
                  "Practitioner", "Organization")


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One supported search parameter of one resource type (``resource="Resource"``: all)."""

    resource: str
    name: str
    type: str  # token | string | date | reference
    expression: str
    definition: str
    targets: tuple[str, ...] = ()


def _p(resource: str, name: str, type_: str, expression: str, definition: str,
       *targets: str) -> SearchParam:
    return SearchParam(resource, name, type_, expression, SP + definition, targets)


PARAMS: tuple[SearchParam, ...] = (
    _p("Resource", "_id", "token", "Resource.id", "Resource-id"),
    _p("Resource", "_lastUpdated", "date", "Resource.meta.lastUpdated", "Resource-lastUpdated"),
    # Procedure
    _p("Procedure", "patient", "reference", "Procedure.subject.where(resolve() is Patient)",
       "clinical-patient", "Patient", "Group"),
    _p("Procedure", "subject", "reference", "Procedure.subject", "Procedure-subject",
       "Group", "Patient"),
    _p("Procedure", "date", "date", "Procedure.performed", "clinical-date"),
    _p("Procedure", "code", "token", "Procedure.code", "clinical-code"),
    _p("Procedure", "status", "token", "Procedure.status", "Procedure-status"),
    _p("Procedure", "identifier", "token", "Procedure.identifier", "clinical-identifier"),
    _p("Procedure", "encounter", "reference", "Procedure.encounter", "clinical-encounter",
       "Encounter", "EpisodeOfCare"),
    _p("Procedure", "part-of", "reference", "Procedure.partOf", "Procedure-part-of",
       "Observation", "Procedure", "MedicationAdministration"),
    _p("Procedure", "reason-reference", "reference", "Procedure.reasonReference",
       "Procedure-reason-reference", "Condition", "Observation", "Procedure",
       "DiagnosticReport", "DocumentReference"),
    # Observation
    _p("Observation", "patient", "reference", "Observation.subject.where(resolve() is Patient)",
       "clinical-patient", "Patient", "Group"),
    _p("Observation", "subject", "reference", "Observation.subject", "Observation-subject",
       "Group", "Device", "Patient", "Location"),
    _p("Observation", "date", "date", "Observation.effective", "clinical-date"),
    _p("Observation", "code", "token", "Observation.code", "clinical-code"),
    _p("Observation", "category", "token", "Observation.category", "Observation-category"),
    _p("Observation", "status", "token", "Observation.status", "Observation-status"),
    _p("Observation", "identifier", "token", "Observation.identifier", "clinical-identifier"),
    _p("Observation", "encounter", "reference", "Observation.encounter", "clinical-encounter",
       "Encounter", "EpisodeOfCare"),
    _p("Observation", "part-of", "reference", "Observation.partOf", "Observation-part-of",
       "Immunization", "MedicationDispense", "MedicationAdministration", "Procedure",
       "ImagingStudy", "MedicationStatement"),
    # Condition
    _p("Condition", "patient", "reference", "Condition.subject.where(resolve() is Patient)",
       "clinical-patient", "Patient", "Group"),
    _p("Condition", "subject", "reference", "Condition.subject", "Condition-subject",
       "Group", "Patient"),
    _p("Condition", "code", "token", "Condition.code", "clinical-code"),
    _p("Condition", "category", "token", "Condition.category", "Condition-category"),
    _p("Condition", "clinical-status", "token", "Condition.clinicalStatus",
       "Condition-clinical-status"),
    _p("Condition", "verification-status", "token", "Condition.verificationStatus",
       "Condition-verification-status"),
    _p("Condition", "identifier", "token", "Condition.identifier", "clinical-identifier"),
    _p("Condition", "encounter", "reference", "Condition.encounter", "Condition-encounter",
       "Encounter"),
    _p("Condition", "recorded-date", "date", "Condition.recordedDate",
       "Condition-recorded-date"),
    # Encounter
    _p("Encounter", "patient", "reference", "Encounter.subject.where(resolve() is Patient)",
       "clinical-patient", "Patient", "Group"),
    _p("Encounter", "date", "date", "Encounter.period", "clinical-date"),
    _p("Encounter", "identifier", "token", "Encounter.identifier", "clinical-identifier"),
    _p("Encounter", "status", "token", "Encounter.status", "Encounter-status"),
    # Patient
    _p("Patient", "identifier", "token", "Patient.identifier", "Patient-identifier"),
    _p("Patient", "family", "string", "Patient.name.family", "individual-family"),
    _p("Patient", "given", "string", "Patient.name.given", "individual-given"),
    _p("Patient", "birthdate", "date", "Patient.birthDate", "individual-birthdate"),
    _p("Patient", "gender", "token", "Patient.gender", "individual-gender"),
    _p("Patient", "organization", "reference", "Patient.managingOrganization",
       "Patient-organization", "Organization"),
    # Practitioner
    _p("Practitioner", "identifier", "token", "Practitioner.identifier",
       "Practitioner-identifier"),
    _p("Practitioner", "name", "string", "Practitioner.name", "Practitioner-name"),
    # Organization
    _p("Organization", "identifier", "token", "Organization.identifier",
       "Organization-identifier"),
    _p("Organization", "name", "string", "Organization.name | Organization.alias",
       "Organization-name"),
)

#: Code systems of the ``code``-typed elements indexed as tokens (their required bindings in R4),
#: so ``status=http://hl7.org/fhir/event-status|completed`` matches as it does on other servers.
CODE_SYSTEMS = {
    "Procedure.status": "http://hl7.org/fhir/event-status",
    "Observation.status": "http://hl7.org/fhir/observation-status",
    "Encounter.status": "http://hl7.org/fhir/encounter-status",
    "Patient.gender": "http://hl7.org/fhir/administrative-gender",
}

#: Modifiers accepted per parameter type (R4 search.html#modifiers), ``missing`` on every type.
MODIFIERS = {
    "token": ("missing", "not"),
    "string": ("missing", "exact", "contains"),
    "date": ("missing",),
    "reference": ("missing",),
}
#: Date prefixes (R4 search.html#prefix).
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def params_of(resource_type: str) -> dict[str, SearchParam]:
    """The parameters of one resource type, by name (the common ``_id``/``_lastUpdated`` too)."""
    return {p.name: p for p in PARAMS if p.resource in (resource_type, "Resource")}


def reference_params(resource_type: str) -> list[SearchParam]:
    """The reference parameters of a type (what ``_include`` / ``_revinclude`` may name)."""
    return [p for p in PARAMS if p.resource == resource_type and p.type == "reference"]


__all__ = ["CODE_SYSTEMS", "DATE_PREFIXES", "MODIFIERS", "PARAMS", "RESOURCE_TYPES",
           "SearchParam", "params_of", "reference_params"]
