"""The mapper's settings (docs/decisions.md#settings); values come in as arguments, never from
env.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_iastm.canonical import DEFAULT_CANONICAL_BASE, normalize_base


@dataclass(frozen=True, slots=True)
class MappingSettings:
    """How ``to_fhir`` renders a record; the defaults are docs/decisions.md#settings."""

    canonical_base: str = DEFAULT_CANONICAL_BASE
    include_cpt: bool = False
    claim_us_core: bool = False
    emit_conditions_for_cancelled: bool = True
    #: Receiver option: Procedures carry ``performedDateTime`` (the visit start; US Core's
    #: must-support type) instead of ``performedPeriod``; validate with the profile variant
    #: ``profiles.performed_as_datetime_variant`` (docs/clinical.md#receiver-options).
    performed_as_datetime: bool = False
    #: Receiver option: no ``meta.profile`` (receivers that reject unknown profiles); validate
    #: with ``mapping.profile_for`` choosing each resource's profile.
    strip_profiles: bool = False
    #: Receiver option: the pain Observations' ``category`` codes (observation-category;
    #: ``survey`` is the profile's required slice, ``exam`` may follow; docs/targets.md).
    pain_category: tuple[str, ...] = ("survey",)
    #: Precomputed ``records.record_hash(record)``; computed when None.
    record_hash: str | None = None

    @property
    def base(self) -> str:
        """The canonical base without a trailing slash."""
        return normalize_base(self.canonical_base)


__all__ = ["DEFAULT_CANONICAL_BASE", "MappingSettings"]
