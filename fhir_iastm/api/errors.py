"""Every error leaves the service as an OperationOutcome (``application/fhir+json``).

One handler on ``IastmError`` serves all its subclasses (Flask resolves handlers by MRO); HTTP
errors raised by Flask itself (404 route, 405, 413, 415 …) are rendered the same way; anything
else is logged and answered with a plain 500 OperationOutcome that reveals nothing, except a
database that is busy or out of reach for now (a write lock waited for past its timeout, a lost
connection): 503 with ``Retry-After``, the request can be sent again. The outcomes' project URLs
are under the app's canonical base (docs/canonical-base.md).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from fhir_iastm.errors import IastmError, Issue, operation_outcome
from fhir_iastm.service import DatabaseError, database_reason, database_unavailable

FHIR_JSON = "application/fhir+json"
log = logging.getLogger("fhir_iastm.api")

#: HTTP status -> (FHIR IssueType, our stable code in CodeSystem iastm-error-code)
_HTTP_ISSUES = {
    400: ("invalid", "E_BAD_REQUEST"),
    401: ("login", "E_UNAUTHORIZED"),
    403: ("forbidden", "E_FORBIDDEN"),
    404: ("not-found", "E_NOT_FOUND"),
    405: ("not-supported", "E_METHOD_NOT_ALLOWED"),
    413: ("too-costly", "E_TOO_LARGE"),
    406: ("not-supported", "E_NOT_ACCEPTABLE"),
    415: ("not-supported", "E_MEDIA_TYPE"),
}


def fhir_response(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON body with the FHIR media type."""
    return Response(json.dumps(body), status=status, mimetype=FHIR_JSON, headers=headers)


def outcome_response(issues: list[Issue], status: int, base: str) -> Response:
    """An OperationOutcome response, its project URLs under the canonical ``base``."""
    return fhir_response(operation_outcome(issues, base=base), status)


def _http_error(exc: HTTPException, base: str) -> Response:
    status = exc.code or 500
    issue_type, code = _HTTP_ISSUES.get(status, ("processing", "E_BAD_REQUEST"))
    issue = Issue("error", issue_type, diagnostics=exc.description or exc.name, details=code)
    response = outcome_response([issue], status, base)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    for key, value in exc.get_headers():
        if key in ("Allow", "WWW-Authenticate"):  # a 405's methods; a 401's challenge
            response.headers[key] = value
    return response


def _unexpected(exc: Exception, base: str) -> Response:
    log.exception("unhandled error: %s", type(exc).__name__)
    issue = Issue("fatal", "exception", diagnostics="internal server error", details="E_INTERNAL")
    return outcome_response([issue], 500, base)


#: Seconds a client is asked to wait before retrying a request the busy database refused.
RETRY_AFTER_S = 1


def _database_error(exc: Exception, base: str) -> Response:
    if not database_unavailable(exc):
        return _unexpected(exc, base)
    log.warning("database unavailable: %s", database_reason(exc))
    issue = Issue("error", "transient", diagnostics="the database is busy or unreachable; "
                  "retry the request", details="E_DATABASE_UNAVAILABLE")
    response = outcome_response([issue], 503, base)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def register_error_handlers(app: Flask, base: str) -> None:
    """Install the handlers on the app; their outcomes name URLs under the canonical
    ``base``."""
    app.register_error_handler(
        IastmError, lambda exc: outcome_response(exc.issues, exc.http_status, base))
    app.register_error_handler(HTTPException, lambda exc: _http_error(exc, base))
    app.register_error_handler(DatabaseError, lambda exc: _database_error(exc, base))
    app.register_error_handler(Exception, lambda exc: _unexpected(exc, base))


__all__ = ["FHIR_JSON", "fhir_response", "outcome_response", "register_error_handlers"]
