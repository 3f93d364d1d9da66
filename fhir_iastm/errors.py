"""The exception hierarchy and the Issue record; every error renders as an OperationOutcome.

See https://hl7.org/fhir/R4/operationoutcome.html for the rendered shape. The rendered outcome names
two project URLs (the error-code CodeSystem and the record-field extension); they live under the
canonical base, so every renderer takes the configured ``base`` (None: the default) — the edges
(API, CLI, worker) pass theirs (docs/canonical-base.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_iastm.canonical import rebase

#: Project CodeSystem that carries the stable error codes of docs/validation.md#record-errors
#: (docs/decisions.md#d14), under the default base (:func:`error_code_system` rebases it).
ERROR_CODE_SYSTEM = "https://iastm.example.org/fhir/CodeSystem/iastm-error-code"

SEVERITIES = ("fatal", "error", "warning", "information")

#: Shape of the codes of profiles/CodeSystem-iastm-error-code.json (E_… errors, W_… warnings).
STABLE_CODE = re.compile(r"[EW]_[A-Z_]+")

#: OperationOutcome.issue extension naming the internal-record field an issue traces back to,
#: under the default base (:func:`record_field_extension` rebases it).
RECORD_FIELD_EXTENSION = "https://iastm.example.org/fhir/StructureDefinition/issue-record-field"


def error_code_system(base: str | None = None) -> str:
    """The error-code CodeSystem's URL under the canonical ``base`` (None: the default)."""
    return rebase(ERROR_CODE_SYSTEM, base)


def record_field_extension(base: str | None = None) -> str:
    """The record-field extension's URL under the canonical ``base`` (None: the default)."""
    return rebase(RECORD_FIELD_EXTENSION, base)


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding: FHIR issue severity and IssueType code, where it is, and our stable code."""

    severity: str
    code: str
    expression: str | None = None
    diagnostics: str | None = None
    details: str | None = None
    #: internal-record field (FHIRPath-style) that produced the offending FHIR element, if known
    record_field: str | None = None

    @property
    def is_error(self) -> bool:
        """True for severity error or fatal."""
        return self.severity in ("error", "fatal")

    def to_fhir(self, base: str | None = None) -> dict[str, Any]:
        """Render as one ``OperationOutcome.issue`` element, its project URLs under the canonical
        ``base`` (None: the default)."""
        out: dict[str, Any] = {"severity": self.severity, "code": self.code}
        if self.record_field:
            out["extension"] = [
                {"url": record_field_extension(base), "valueString": self.record_field}
            ]
        if self.details and STABLE_CODE.fullmatch(self.details):
            out["details"] = {
                "coding": [{"system": error_code_system(base), "code": self.details}],
                "text": self.details,
            }
        elif self.details:  # a profile rule id (e.g. iastm-proc-4), not one of our error codes
            out["details"] = {"text": self.details}
        if self.diagnostics:
            out["diagnostics"] = self.diagnostics
        if self.record_field:
            where = f"(record field: {self.record_field})"
            out["diagnostics"] = f"{self.diagnostics or ''} {where}".lstrip()
        if self.expression:
            out["expression"] = [self.expression]
        return out


def operation_outcome(issues: Iterable[Issue], *, base: str | None = None) -> dict[str, Any]:
    """Render issues as an R4 OperationOutcome, its project URLs under the canonical ``base``
    (None: the default); no issue becomes one 'All OK' information issue."""
    rendered = [issue.to_fhir(base) for issue in issues]
    if not rendered:
        rendered = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    return {"resourceType": "OperationOutcome", "issue": rendered}


def has_errors(issues: Iterable[Issue]) -> bool:
    """True when any issue has severity error or fatal."""
    return any(issue.is_error for issue in issues)


class IastmError(Exception):
    """Base of every project error; carries a stable code, an HTTP status and the issues."""

    code = "E_INTERNAL"
    http_status = 500
    issue_type = "exception"

    def __init__(self, message: str, issues: Sequence[Issue] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.issues: list[Issue] = list(issues) if issues else [
            Issue("error", self.issue_type, diagnostics=message, details=self.code)
        ]

    def operation_outcome(self, *, base: str | None = None) -> dict[str, Any]:
        """This error as an OperationOutcome under the canonical ``base`` (None: the default)."""
        return operation_outcome(self.issues, base=base)


class InvalidRecordError(IastmError):
    """The internal record breaks the contract of docs/validation.md#record-validation (HTTP
    422)."""

    code = "E_INVALID_RECORD"
    http_status = 422
    issue_type = "invalid"

    @property
    def codes(self) -> list[tuple[str | None, str | None]]:
        """(error code, field path) of every error issue, for tests and summaries."""
        return [(i.details, i.expression) for i in self.issues if i.is_error]


class ConflictRecordError(InvalidRecordError):
    """Same session_id with other content or a lower record_version (HTTP 409,
    docs/decisions.md#d15)."""

    code = "E_DUPLICATE_SESSION"
    http_status = 409
    issue_type = "duplicate"


class MappingError(IastmError):
    """A value has no mapping in a code table, or FHIR cannot be mapped back (HTTP 422)."""

    code = "E_UNMAPPABLE"
    http_status = 422
    issue_type = "code-invalid"


class ProfileValidationError(IastmError):
    """A resource breaks one of our profiles; carries the issues (HTTP 422)."""

    code = "E_PROFILE"
    http_status = 422
    issue_type = "invariant"


class BadBodyError(IastmError):
    """A request body that is not acceptable JSON (HTTP 400); the issue names where."""

    code = "E_BAD_REQUEST"
    http_status = 400
    issue_type = "structure"


class BodyTimeoutError(IastmError):
    """The client did not send the whole request body in time (HTTP 408)."""

    code = "E_TIMEOUT"
    http_status = 408
    issue_type = "timeout"


class NotFoundError(IastmError):
    """Unknown local record or resource (HTTP 404)."""

    code = "E_NOT_FOUND"
    http_status = 404
    issue_type = "not-found"


class NotAcceptableError(IastmError):
    """The client asked for a format or FHIR version this facade does not serve (406)."""

    code = "E_NOT_ACCEPTABLE"
    http_status = 406
    issue_type = "not-supported"


class GoneError(IastmError):
    """The resource was retracted by a newer record version (410); its history remains."""

    code = "E_GONE"
    http_status = 410
    issue_type = "deleted"


class ConfigError(IastmError):
    """Start-up or profile-loading problem (HTTP 500)."""

    code = "E_CONFIG"
    http_status = 500
    issue_type = "exception"


class FhirServerError(IastmError):
    """Error reply from the FHIR server; carries its OperationOutcome (HTTP 502)."""

    code = "E_FHIR_SERVER"
    http_status = 502
    issue_type = "exception"

    def __init__(
        self,
        message: str,
        issues: Sequence[Issue] | None = None,
        *,
        status: int | None = None,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, issues)
        self.status = status
        self.outcome = outcome


class FhirUnavailableError(FhirServerError):
    """Timeout, connection failure or 429/5xx from the FHIR server (HTTP 503)."""

    code = "E_FHIR_UNAVAILABLE"
    http_status = 503
    issue_type = "transient"
    #: Seconds the server asked us to wait (``Retry-After``), when it said; set by the client.
    retry_after: float | None = None


class FhirAuthError(FhirServerError):
    """The FHIR server answered 401/403 (HTTP 502)."""

    code = "E_FHIR_AUTH"
    issue_type = "security"


class FhirConflictError(FhirServerError):
    """The FHIR server answered 409/412 (HTTP 409)."""

    code = "E_PUSH_REJECTED"
    http_status = 409
    issue_type = "conflict"


class PlanChangedError(FhirConflictError):
    """A dry run's plan no longer holds: the server or the stored record changed since it was
    made, so applying it would write something else; nothing was written (HTTP 409)."""

    code = "E_PLAN_CHANGED"


class AmbiguousMatchError(FhirConflictError):
    """A business identifier matched several resources on the FHIR server: the record cannot be
    written without guessing which one is ours (HTTP 409; never retried)."""

    code = "E_AMBIGUOUS_MATCH"
    issue_type = "multiple-matches"


def ambiguous_match(
    message: str,
    expression: str | None = None,
    *,
    issues: Sequence[Issue] | None = None,
    status: int | None = None,
    outcome: dict[str, Any] | None = None,
) -> AmbiguousMatchError:
    """The one constructor of the ambiguous-match error: our own finding (``message`` at
    ``expression``), or a server's 412 reply (its ``issues``, ``status`` and ``outcome``)."""
    if issues is None:
        issues = [
            Issue("error", AmbiguousMatchError.issue_type, expression, message,
                  AmbiguousMatchError.code)
        ]
    return AmbiguousMatchError(message, issues, status=status, outcome=outcome)


class LeaseLostError(IastmError):
    """The outbox entry's lease expired and another worker claimed it; this worker's result is
    dropped (the store raises it, the worker counts it)."""

    code = "E_LEASE_LOST"
    http_status = 409
    issue_type = "conflict"


__all__ = [
    "ERROR_CODE_SYSTEM",
    "RECORD_FIELD_EXTENSION",
    "AmbiguousMatchError",
    "BadBodyError",
    "BodyTimeoutError",
    "ConfigError",
    "ConflictRecordError",
    "FhirAuthError",
    "PlanChangedError",
    "FhirConflictError",
    "FhirServerError",
    "FhirUnavailableError",
    "GoneError",
    "IastmError",
    "InvalidRecordError",
    "Issue",
    "LeaseLostError",
    "MappingError",
    "NotAcceptableError",
    "NotFoundError",
    "ProfileValidationError",
    "ambiguous_match",
    "error_code_system",
    "has_errors",
    "operation_outcome",
    "record_field_extension",
]
