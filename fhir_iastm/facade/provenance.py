"""A session's Provenance as the facade exports it (``$export``, docs/smart-bulk.md#provenance).

It is the Provenance a push writes (``mapping.provenance``: the session's resources as
``target``, the clinic as author, the fhir-iastm Device as assembler, the source record and its
version as ``entity``), with the logical ids and literal references the facade's own resources
have, so its ``target`` references resolve within the export. The facade does not store it: it is
built from the session's stored record when an export asks for it. Pure.
"""

from __future__ import annotations

from typing import Any

from fhir_iastm.facade.resources import stored_last
from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.mapping.provenance import provenance_entries
from fhir_iastm.records.model import SessionRecord


def session_provenance(record: SessionRecord, settings: MappingSettings) -> dict[str, Any]:
    """The Provenance of a record version (``settings`` carry its ``record_hash``). Only the
    Provenance is rewritten to logical ids, and the session's resources are mapped without their
    narratives: the Provenance refers to them, it does not carry them (an export builds one per
    session)."""
    bundle = to_fhir(record, settings, narrative=False)
    audit = provenance_entries(bundle, record, settings)
    provenance = stored_last({"entry": [*bundle["entry"], *audit]})
    assert provenance["resourceType"] == "Provenance"
    return provenance


__all__ = ["session_provenance"]
