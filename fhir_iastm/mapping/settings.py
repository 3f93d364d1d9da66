"""The mapper's settings (docs/decisions.md#settings); values come in as arguments, never from
env.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CANONICAL_BASE = "https://iastm.example.org/fhir"


@dataclass(frozen=True, slots=True)
class MappingSettings:
    """How ``to_fhir`` renders a record; the defaults are docs/decisions.md#settings."""

    canonical_base: str = DEFAULT_CANONICAL_BASE
    include_cpt: bool = False
    claim_us_core: bool = False
    emit_conditions_for_cancelled: bool = True
    #: Precomputed ``records.record_hash(record)``; computed when None.
    record_hash: str | None = None

    @property
    def base(self) -> str:
        """The canonical base without a trailing slash."""
        return self.canonical_base.rstrip("/")


__all__ = ["DEFAULT_CANONICAL_BASE", "MappingSettings"]
