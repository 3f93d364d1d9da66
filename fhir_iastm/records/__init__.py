"""CORE: the internal IASTM session record contract — marshmallow schemas, field and cross-field
rules, the frozen dataclass model and its canonical hash. Imports only the standard library,
marshmallow, rfc8785 and ``fhir_iastm.errors``.
"""

from fhir_iastm.records.load import (
    canonical_json,
    check_batch,
    check_record,
    http_status_for,
    load_record,
    record_hash,
)

__all__ = [
    "canonical_json",
    "check_batch",
    "check_record",
    "http_status_for",
    "load_record",
    "record_hash",
]
