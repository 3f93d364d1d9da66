"""EDGE (requests): the FHIR R4 HTTP client — one place that sends, retries and turns HTTP
statuses into typed errors carrying the server's OperationOutcome. Knows no record and no mapping;
imports only ``fhir_iastm.errors`` from the project.

``policy`` (what may be retried, how long to wait, which error a reply is) and ``capabilities``
(a CapabilityStatement read for the push) are pure and import no HTTP library; the names below
are loaded from ``client.client`` (requests) on first use, so importing those two stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "CONFORMANCE_TYPES",
    "Capabilities",
    "FhirClient",
    "RetryPolicy",
    "error_for_status",
    "is_idempotent_bundle",
    "is_multiple_matches",
    "parse_retry_after",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("fhir_iastm.client.client"), name)
    raise AttributeError(f"module 'fhir_iastm.client' has no attribute {name!r}")
