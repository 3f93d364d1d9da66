"""The pure rules of the FHIR client: what may be retried, how long to wait, which error a reply is.

They import no HTTP library, so they are testable without HTTP; :mod:`fhir_iastm.client` applies
them. Spec: https://hl7.org/fhir/R4/http.html,
https://hl7.org/fhir/R4/bundle.html#transaction, RFC 9110 §10.2.3 (Retry-After).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_iastm.backoff import Backoff
from fhir_iastm.errors import (
    SEVERITIES,
    AmbiguousMatchError,
    FhirAuthError,
    FhirConflictError,
    FhirServerError,
    FhirUnavailableError,
    Issue,
    NotFoundError,
    ambiguous_match,
)

__all__ = [
    "RetryPolicy",
    "error_for_status",
    "is_expired_token",
    "is_idempotent_bundle",
    "is_multiple_matches",
    "outcome_issues",
    "parse_retry_after",
]

_TYPE_ID_URL = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
_TYPE_IDENTIFIER_URL = re.compile(r"^[A-Z][A-Za-z]+\?(.*&)?identifier=")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry an idempotent request (deterministic, jitter-free)."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    statuses: tuple[int, ...] = (429, 502, 503, 504)
    retry_conflict: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy needs max_attempts >= 1 and non-negative delays")

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt ``attempt`` (1-based): base * 2**(attempt-1), capped."""
        return Backoff(self.base_delay, 2.0, self.max_delay, jitter=0.0).delay(attempt)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 HTTP-dates are GMT
        return None
    return max(0.0, when.timestamp() - now)


def is_idempotent_bundle(bundle: Mapping[str, Any]) -> bool:
    """True when every entry is GET, PUT ``Type/id`` / ``Type?identifier=``, POST+ifNoneExist."""
    entries = bundle.get("entry") or []
    return all(_is_idempotent_entry(entry.get("request") or {}) for entry in entries)


def _is_idempotent_entry(request: Mapping[str, Any]) -> bool:
    method = str(request.get("method", "")).upper()
    url = str(request.get("url", ""))
    if method in ("GET", "HEAD"):
        return True
    if method == "PUT":
        return bool(_TYPE_ID_URL.match(url) or _TYPE_IDENTIFIER_URL.match(url))
    if method == "POST":
        return bool(str(request.get("ifNoneExist") or "").strip())
    return False


#: HAPI: "... because this search matched 2 resources" / "... matched 2 or more resources",
#: "Multiple resources match this search"; other servers: "multiple matches".
_MULTIPLE_MATCHES = re.compile(
    r"matched (?:[2-9]|\d{2,}) (?:or more )?resources|multiple (?:matches|resources match)", re.I
)


def is_multiple_matches(outcome: Mapping[str, Any] | None) -> bool:
    """True when an OperationOutcome says a conditional URL matched several resources."""
    for issue in _raw_issues(outcome):
        if issue.get("code") == "multiple-matches" or _MULTIPLE_MATCHES.search(_issue_text(issue)):
            return True
    return False


def is_expired_token(outcome: Mapping[str, Any] | None) -> bool:
    """True when an OperationOutcome has an issue of code ``expired`` (a token ran out)."""
    return any(issue.get("code") == "expired" for issue in _raw_issues(outcome))


def outcome_issues(outcome: Mapping[str, Any] | None, details: str, fallback: Issue) -> list[Issue]:
    """The server's issues as :class:`Issue` (severity, code, expression, diagnostics kept).

    Error/fatal issues get our stable code ``details``; when the server sent none, ``fallback``
    is added so the error always carries an error issue.
    """
    issues = []
    for raw in _raw_issues(outcome):
        severity = raw.get("severity") if raw.get("severity") in SEVERITIES else "error"
        where = raw.get("expression") or raw.get("location") or [None]
        first = where[0] if isinstance(where, list) else None
        code = raw.get("code") if isinstance(raw.get("code"), str) and raw.get("code") else None
        issues.append(
            Issue(
                str(severity),
                code or "processing",
                expression=first if isinstance(first, str) else None,
                diagnostics=_issue_text(raw) or None,
                details=details if severity in ("error", "fatal") else None,
            )
        )
    if not any(issue.is_error for issue in issues):
        issues.append(fallback)
    return issues


def error_for_status(
    status: int, outcome: Mapping[str, Any] | None, *, context: str = "FHIR request"
) -> FhirServerError:
    """The one map from an HTTP error status (+ OperationOutcome) to our exception.

    401/403 -> FhirAuthError; 409/412 -> FhirConflictError (412 whose outcome reports several
    matches -> code ``E_AMBIGUOUS_MATCH``, else ``E_PUSH_REJECTED``; docs/decisions.md#d9);
    429/502/503/504 -> FhirUnavailableError; anything else (400, 404, 410, 422, 500, ...) ->
    FhirServerError. ``status`` and ``outcome`` are kept on the exception.
    """
    message = f"{context}: HTTP {status}"
    kept = dict(outcome) if outcome is not None else None
    cls: type[FhirServerError] = FhirServerError
    code, issue_type = FhirServerError.code, "processing"
    if status in (401, 403):
        cls, code, issue_type = FhirAuthError, FhirAuthError.code, "security"
    elif status == 412 and is_multiple_matches(outcome):
        cls, code, issue_type = AmbiguousMatchError, AmbiguousMatchError.code, "multiple-matches"
    elif status in (409, 412):
        cls, code, issue_type = FhirConflictError, FhirConflictError.code, "conflict"
    elif status in (404, 410):
        code, issue_type = NotFoundError.code, "not-found"
    elif status in (429, 502, 503, 504):
        cls, code, issue_type = FhirUnavailableError, FhirUnavailableError.code, "transient"
    fallback = Issue("error", issue_type, diagnostics=message, details=code)
    issues = outcome_issues(outcome, code, fallback)
    if cls is AmbiguousMatchError:
        return ambiguous_match(message, issues=issues, status=status, outcome=kept)
    error = cls(message, issues, status=status, outcome=kept)
    error.code = code  # the stable code of this case (E_AMBIGUOUS_MATCH, E_NOT_FOUND, ...)
    return error


def _raw_issues(outcome: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    issues = (outcome or {}).get("issue")
    return [i for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []


def _issue_text(issue: Mapping[str, Any]) -> str:
    """``diagnostics``, else ``details.text`` (or "")."""
    details = issue.get("details")
    text = issue.get("diagnostics") or (details.get("text") if isinstance(details, dict) else None)
    return text if isinstance(text, str) else ""
