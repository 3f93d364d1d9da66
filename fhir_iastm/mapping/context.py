"""What every forward builder needs for one record — settings, codes, fullUrls, profiles.
"""

from __future__ import annotations

from fhir_iastm.mapping import ids
from fhir_iastm.mapping.codes import STATUS, Tables, tables
from fhir_iastm.mapping.datatypes import Json, identifier, reference
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records.model import Condition, SessionRecord

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
#: Our profile id -> the US Core profile it satisfies (emitted only with claim_us_core,
#: docs/decisions.md#d1).
US_CORE_PROFILE = {
    "iastm-organization": US_CORE + "us-core-organization",
    "iastm-practitioner": US_CORE + "us-core-practitioner",
    "iastm-patient": US_CORE + "us-core-patient",
    "iastm-encounter": US_CORE + "us-core-encounter",
    "iastm-condition": US_CORE + "us-core-condition-encounter-diagnosis",
    "iastm-procedure": US_CORE + "us-core-procedure",
    "iastm-adjunct-procedure": US_CORE + "us-core-procedure",
    "iastm-pain-observation": US_CORE + "us-core-observation-screening-assessment",
    "iastm-rom-observation": US_CORE + "us-core-observation-clinical-result",
    "iastm-prom-observation": US_CORE + "us-core-observation-screening-assessment",
    "iastm-effect-observation": US_CORE + "us-core-observation-clinical-result",
}

# Roles: the suffix of fullUrl seeds and of iastm-session-resource identifier values
# (docs/decisions.md#identifiers).
ORGANIZATION, PRACTITIONER, PATIENT = "organization", "practitioner", "patient"
ENCOUNTER, PROCEDURE = "encounter", "procedure"


def condition_role(condition_id: str) -> str:
    return f"condition/{condition_id}"


def adjunct_role(adjunct_type: str) -> str:
    return f"adjunct/{adjunct_type}"


def pain_role(timing: str) -> str:
    return f"obs/pain-{timing}"


def rom_role(key: str) -> str:
    return f"obs/rom/{key}"


def prom_role(instrument: str) -> str:
    return f"obs/prom/{instrument}"


class MappingContext:
    """One record being mapped, with its settings and precomputed pieces (built once per record)."""

    __slots__ = (
        "base",
        "codes",
        "conditions",
        "contained_conditions",
        "record",
        "record_hash",
        "settings",
        "statuses",
        "amended",
        "references",
        "_urls",
    )

    def __init__(
        self,
        record: SessionRecord,
        settings: MappingSettings,
        record_hash: str,
        amended: frozenset[str] = frozenset(),
    ) -> None:
        self.record = record
        #: identifier values of the Observations sent as ``amended`` (mapping/amend.py)
        self.amended = amended
        self.settings = settings
        self.record_hash = record_hash
        self.base: str = settings.base
        self.codes: Tables = tables(self.base)
        #: (Encounter.status, Procedure.status, Observation.status) per docs/decisions.md#statuses.
        self.statuses: tuple[str, str, str | None] = STATUS[record.status]
        #: Conditions that get a per-encounter copy (docs/decisions.md#statuses;
        #: emit_conditions_for_cancelled).
        standalone = record.status != "cancelled" or settings.emit_conditions_for_cancelled
        self.conditions: tuple[Condition, ...] = record.conditions if standalone else ()
        #: Conditions carried inside the Encounter instead (``Encounter.contained``,
        #: docs/decisions.md#cancelled-conditions): the others of the record.
        self.contained_conditions: tuple[Condition, ...] = () if standalone else record.conditions
        self._urls: dict[str, str] = {}
        #: Every Reference the record's resources carry, each the dict that sits in its resource
        #: (the FHIR facade rewrites them to literal ``Type/id``: ``mapping.bundle.mapped``).
        self.references: list[Json] = []

    def url(self, role: str) -> str:
        """The fullUrl of the entry playing ``role`` (memoised: every entry references several)."""
        found = self._urls.get(role)
        if found is None:
            found = self._urls[role] = ids.full_url(self.base, self.record.session_id, role)
        return found

    def reference(self, role: str) -> Json:
        """A Reference to the entry playing ``role`` (its fullUrl), kept in ``references``."""
        ref = reference(self.url(role))
        self.references.append(ref)
        return ref

    def kept(self, ref: Json) -> Json:
        """``ref``, kept in ``references``: every Reference a builder puts in a resource."""
        self.references.append(ref)
        return ref

    def sid(self, name: str) -> str:
        return ids.sid(self.base, name)

    def session_identifier(self, role: str) -> Json:
        """The ``iastm-session-resource`` identifier (the conditional-update key) of ``role``."""
        value = ids.session_resource_value(self.record.session_id, role)
        return identifier(self.sid("iastm-session-resource"), value)

    def meta(self, profile: str) -> Json | None:
        """``meta.profile``: our profile, plus US Core's only when claimed
        (docs/decisions.md#d1); none with the ``strip_profiles`` receiver option."""
        if self.settings.strip_profiles:
            return None
        profiles = [ids.sd(self.base, profile)]
        if self.settings.claim_us_core and profile in US_CORE_PROFILE:
            profiles.append(US_CORE_PROFILE[profile])
        return {"profile": profiles}

    def ext_url(self, name: str) -> str:
        return ids.sd(self.base, name)

    def source_extensions(self) -> list[Json]:
        """source-record-version and source-record-hash (docs/decisions.md#d7), fresh dicts."""
        return [
            {
                "url": self.ext_url("source-record-version"),
                "valuePositiveInt": self.record.record_version,
            },
            {"url": self.ext_url("source-record-hash"), "valueString": self.record_hash},
        ]


__all__ = [
    "ENCOUNTER",
    "ORGANIZATION",
    "PATIENT",
    "PRACTITIONER",
    "PROCEDURE",
    "US_CORE_PROFILE",
    "MappingContext",
    "adjunct_role",
    "condition_role",
    "pain_role",
    "prom_role",
    "rom_role",
]
