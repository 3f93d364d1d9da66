"""Bulk Data Access IG 2.0.0 ``$export``: the kick-off request, the manifest and the Group of a
clinic, as pure functions (no Flask, no SQL, no files). The job runner is
``fhir_iastm.bulk_service``; the views are ``fhir_iastm.api.bulk``. docs/smart-bulk.md.
"""

from fhir_iastm.bulk.request import (
    EXPORT_TYPES,
    OUTPUT_FORMATS,
    SHARED_TYPES,
    BulkError,
    ExportRequest,
    parse_kickoff,
    parse_type_filters,
)

__all__ = [
    "EXPORT_TYPES",
    "OUTPUT_FORMATS",
    "SHARED_TYPES",
    "BulkError",
    "ExportRequest",
    "parse_kickoff",
    "parse_type_filters",
]
