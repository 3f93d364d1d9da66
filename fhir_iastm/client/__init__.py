"""EDGE (requests): the FHIR R4 HTTP client — one place that sends, retries and turns HTTP
statuses into typed errors carrying the server's OperationOutcome. Knows no record and no mapping;
imports only ``fhir_iastm.errors`` and ``fhir_iastm.backoff`` from the project.

``client`` (one method per FHIR interaction), ``transport`` (send, retry, parse), ``policy``
(what may be retried, how long to wait, which error a reply is) and ``capabilities`` (a
CapabilityStatement read for the push). ``policy`` and ``capabilities`` import no HTTP library;
``FhirClient`` is loaded from ``client.client`` (requests) on first use, so importing the package
stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from fhir_iastm.client.capabilities import Capabilities
from fhir_iastm.client.policy import (
    RetryPolicy,
    error_for_status,
    is_idempotent_bundle,
    is_multiple_matches,
    parse_retry_after,
)

#: Loaded from ``client.client`` (and so ``requests``) on first use.
_HTTP_NAMES = ("CONFORMANCE_TYPES", "FhirClient")

__all__ = [
    *_HTTP_NAMES,
    "Capabilities",
    "RetryPolicy",
    "error_for_status",
    "is_idempotent_bundle",
    "is_multiple_matches",
    "parse_retry_after",
]


def __getattr__(name: str) -> Any:
    if name in _HTTP_NAMES:
        return getattr(import_module("fhir_iastm.client.client"), name)
    raise AttributeError(f"module 'fhir_iastm.client' has no attribute {name!r}")
