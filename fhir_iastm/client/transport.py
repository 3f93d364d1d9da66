"""Sending one FHIR request: retries, timeouts, the parsed reply or a typed error.

* Every request goes through one ``requests.Session`` with explicit timeouts, the
  ``application/fhir+json`` media type and the target's credentials (``client.auth``: a static
  token, basic, extra headers, mutual TLS, or SMART Backend Services tokens from
  ``client.smart_tokens``). A 401, or an OperationOutcome with code ``expired``, while a SMART
  token was sent drops that token, fetches one new token and retries the request once.
* Only idempotent requests are retried (see ``client.client``), on connection errors, timeouts,
  :attr:`RetryPolicy.statuses` and 409 version conflicts. A request that was never sent
  (connection refused, connect timeout) is retried whatever its method.
* Every ``requests`` exception is re-raised as our error with ``raise ... from exc``; an error
  status becomes :func:`~fhir_iastm.client.policy.error_for_status`'s exception.
* Logs carry method, resource type, status, attempt and duration only: URLs can hold MRNs in
  identifier queries, bodies hold PHI.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from fhir_iastm.client.auth import TargetAuth
from fhir_iastm.client.policy import (
    RetryPolicy,
    error_for_status,
    is_expired_token,
    parse_retry_after,
)
from fhir_iastm.client.smart_tokens import SmartTokens
from fhir_iastm.errors import ConfigError, FhirServerError, FhirUnavailableError, IastmError

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"

Params = Sequence[tuple[str, str]] | Mapping[str, str]
Timeout = float | tuple[float, float]
Json = dict[str, Any]


def outcome_of(response: requests.Response) -> Json | None:
    """The OperationOutcome body of a reply, or None (not JSON, or another resource)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return body
    return None



@dataclass(frozen=True, slots=True)
class Request:
    """One logical request; ``label`` (method + resource type) is all that reaches logs/errors."""

    method: str
    url: str
    label: str
    idempotent: bool
    params: Params | None = None
    body: Json | None = None
    headers: Mapping[str, str] | None = None
    retry_conflict: bool = True
    expect: str | None = None
    outcome_ok: bool = False  # $validate: a 4xx OperationOutcome is the answer, not an error
    empty_ok: bool = False  # DELETE: a 2xx without a body (or with an OperationOutcome) is fine



class Transport:
    """The HTTP side of one FHIR server: base URL, session, credentials, timeouts, retries.

    ``token`` is shorthand for ``auth=TargetAuth(token=...)``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: Timeout = (5, 60),
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        auth: TargetAuth | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError("FHIR base URL must be an absolute http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.auth = auth or TargetAuth(token=token)
        self._session = session or requests.Session()
        self._owns_session = session is None
        self._sleep = sleep
        #: the ``Date`` header of the last response (the readiness check's clock offset)
        self.server_date: str | None = None
        self.auth.configure(self._session)
        self.tokens = (SmartTokens(self.base_url, self.auth.smart, self._session,
                                   tls=self.auth.tls()) if self.auth.smart else None)

    def authenticate(self) -> None:
        """Get (or reuse) the SMART token now: a refused client, key or scope raises here,
        before any FHIR request (a no-op for the other kinds of credentials)."""
        if self.tokens is not None:
            self.tokens.token()

    def close(self) -> None:
        """Close the session if this transport created it."""
        if self._owns_session:
            self._session.close()

    def send(self, request: Request) -> Json:
        """Run one request under the retry policy; the parsed body or an exception."""
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            started = time.monotonic()
            token = self.tokens.token() if self.tokens is not None else None
            try:
                response = self._session.request(
                    request.method,
                    self._absolute(request.url),
                    params=param_list(request.params),
                    json=request.body,
                    headers=self._headers(request, token),
                    timeout=self.timeout,
                    allow_redirects=False,
                    **self.auth.tls(),
                )
            except requests.RequestException as exc:
                self._log(request, type(exc).__name__, attempt, started)
                delay = self._transport_delay(request, exc, attempt)
                if delay is None:
                    raise _transport_error(request, exc, attempt) from exc
                self._sleep(delay)
                continue
            self._log(request, response.status_code, attempt, started)
            self.server_date = response.headers.get("Date")
            if response.status_code < 300 and request.empty_ok:
                return outcome_of(response) or {}
            if response.status_code < 300 or (request.outcome_ok and _is_outcome_reply(response)):
                return _parse_body(request, response)
            if token is not None and not refreshed and token_refused(response):
                assert self.tokens is not None
                self.tokens.invalidate(token)  # one new token, one retry
                refreshed, attempt = True, attempt - 1
                continue
            delay = self._status_delay(request, response, attempt)
            if delay is None:
                retried = self._retries_status(request, response)
                raise _status_error(request, response, attempt, retried)
            self._sleep(delay)

    def _transport_delay(
        self, request: Request, exc: requests.RequestException, attempt: int
    ) -> float | None:
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return None
        retryable = isinstance(
            exc,
            requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError,
        )
        if not retryable or not (request.idempotent or _never_sent(exc)):
            return None
        return self.retry.backoff(attempt) if attempt < self.retry.max_attempts else None

    def _retries_status(self, request: Request, response: requests.Response) -> bool:
        status = response.status_code
        if not request.idempotent:
            return False
        if status == 409:
            return self.retry.retry_conflict and request.retry_conflict
        return status in self.retry.statuses

    def _status_delay(
        self, request: Request, response: requests.Response, attempt: int
    ) -> float | None:
        if not self._retries_status(request, response) or attempt >= self.retry.max_attempts:
            return None
        wait = parse_retry_after(response.headers.get("Retry-After"), time.time())
        if wait is None:
            return self.retry.backoff(attempt)
        # Honour the server: never come back earlier than asked; give up if it asks too much.
        return wait if wait <= self.retry.max_delay else None

    def _headers(self, request: Request, token: str | None) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON}
        if request.body is not None:
            headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
        headers.update(self.auth.static_headers())
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        headers.update(request.headers or {})
        return headers

    def _absolute(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        return f"{self.base_url}/{url}" if url else self.base_url

    def check_under_base(self, url: str, resource_type: str) -> None:
        """Refuse a paging link that leaves the configured server (it would get our token)."""
        base, link = urlsplit(self.base_url), urlsplit(url)
        same_origin = (link.scheme.lower(), _netloc(link)) == (base.scheme.lower(), _netloc(base))
        base_path = base.path.rstrip("/")
        under = link.path == base_path or link.path.startswith(base_path + "/")
        if not (same_origin and under):
            raise FhirServerError(
                f"GET {resource_type}: the server's next link points outside the base URL "
                f"({link.scheme}://{link.netloc}), refused"
            )

    def _log(self, request: Request, status: int | str, attempt: int, started: float) -> None:
        """Log method + type, status or exception name, attempt, duration; no URL, no body."""
        log.info(
            "%s -> %s attempt=%d %.1fms",
            request.label,
            status,
            attempt,
            (time.monotonic() - started) * 1000,
        )



def _netloc(parts: Any) -> tuple[str, int | None]:
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return ((parts.hostname or "").lower(), parts.port or default)



def param_list(params: Params | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]



def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request surely never reached the server (safe to retry any method)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _transport_error(request: Request, exc: requests.RequestException, attempt: int) -> IastmError:
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return ConfigError(f"{request.label}: invalid FHIR server URL")
    kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
    if not request.idempotent and not _never_sent(exc):
        return FhirUnavailableError(
            f"{request.label}: {kind}; the request may have reached the server, so it was not "
            "retried (outcome unknown)"
        )
    return FhirUnavailableError(f"{request.label}: {kind} after {attempt} attempt(s)")


def _status_error(
    request: Request, response: requests.Response, attempt: int, retried: bool
) -> FhirServerError:
    status, outcome = response.status_code, outcome_of(response)
    context = f"{request.label} after {attempt} attempt(s)" if retried else request.label
    error = error_for_status(status, outcome, context=context)
    if retried and status != 409 and not isinstance(error, FhirUnavailableError):
        # e.g. 500 listed in RetryPolicy.statuses: the bound turns it into "unavailable"
        issues = [
            replace(i, details=FhirUnavailableError.code) if i.details else i for i in error.issues
        ]
        error = FhirUnavailableError(error.message, issues, status=status, outcome=outcome)
    if isinstance(error, FhirUnavailableError):
        error.retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
    return error


def token_refused(response: requests.Response) -> bool:
    """401, or a 4xx OperationOutcome whose issue code is ``expired`` (the token ran out)."""
    if response.status_code == 401:
        return True
    return 400 <= response.status_code < 500 and is_expired_token(outcome_of(response))


def _is_outcome_reply(response: requests.Response) -> bool:
    return (
        400 <= response.status_code < 500
        and response.status_code not in (401, 403, 429)
        and outcome_of(response) is not None
    )


def _parse_body(request: Request, response: requests.Response) -> Json:
    """The JSON resource of a 2xx reply; anything unconfirmed is an error, never a success
    (a DELETE may answer 204 with no body)."""
    if request.method == "DELETE" and not response.content:
        return {}
    try:
        body = response.json()
    except ValueError as exc:
        raise FhirServerError(
            f"{request.label}: malformed response (HTTP {response.status_code}, body is not JSON)",
            status=response.status_code,
        ) from exc
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirServerError(
            f"{request.label}: malformed response (no FHIR resource)", status=response.status_code
        )
    if request.expect and body["resourceType"] != request.expect:
        raise FhirServerError(
            f"{request.label}: malformed response ({body['resourceType']}, "
            f"expected {request.expect})",
            status=response.status_code,
        )
    return body



__all__ = ["FHIR_JSON", "Json", "Params", "Request", "Timeout", "Transport", "outcome_of",
           "param_list", "token_refused"]
