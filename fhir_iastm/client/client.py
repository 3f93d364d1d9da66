"""Edge: the FHIR HTTP client, the only module that talks HTTP to FHIR servers.

Layer: edge. Imports the standard library, ``requests`` (and its transport ``urllib3``) and
``fhir_iastm.errors``; nothing imports it from the core.

* Every request goes through one ``requests.Session`` with explicit timeouts, the
  ``application/fhir+json`` media type and, when configured, a bearer token.
* One function, :func:`error_for_status`, turns an HTTP error status and its OperationOutcome
  into a :class:`~fhir_iastm.errors.FhirServerError` subclass; every ``requests`` exception is
  re-raised with ``raise ... from exc``.
* Only idempotent requests are retried (GET, PUT, transactions whose entries are all PUT
  ``Type/id`` / ``Type?identifier=...``, POST with ``ifNoneExist``, or GET), on connection
  errors, timeouts, :attr:`RetryPolicy.statuses` and 409 version conflicts. A request that was
  never sent (connection refused, connect timeout) is retried whatever its method.
* Logs carry method, resource type, status, attempt and duration only: URLs can hold MRNs in
  identifier queries, bodies hold PHI.

What callers get (every exception keeps ``status``, the server's ``outcome`` and its issues as
:class:`~fhir_iastm.errors.Issue`; ``exc.code`` is the stable code):

* transport failure or 429/502/503/504 (after the retry bound, or at once for a request that is
  not idempotent, or when ``Retry-After`` exceeds ``max_delay``) -> ``FhirUnavailableError``;
  a non-idempotent request that timed out says "outcome unknown": re-read before re-sending.
* 401/403 -> ``FhirAuthError``; 404/410 -> ``FhirServerError`` with code ``E_NOT_FOUND``.
* 409/412 -> ``FhirConflictError``: ``E_AMBIGUOUS_MATCH`` when a 412's outcome reports several
  matches, else ``E_PUSH_REJECTED``. HAPI 8.8 answers a stale ``If-Match`` with **409**
  (HAPI-0989), which is why requests carrying If-Match are never retried on 409.
* any other status, or a 2xx whose body is not the expected resource (torn JSON, a
  transaction-response without one 2xx entry per request entry) -> ``FhirServerError``.

Spec: https://hl7.org/fhir/R4/http.html (RESTful API), .../R4/bundle.html#transaction.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from fhir_iastm.client.capabilities import Capabilities
from fhir_iastm.client.policy import (
    RetryPolicy,
    error_for_status,
    is_idempotent_bundle,
    is_multiple_matches,
    parse_retry_after,
)
from fhir_iastm.errors import ConfigError, FhirServerError, FhirUnavailableError, IastmError

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
#: Resource types :meth:`FhirClient.post_conformance` may write.
CONFORMANCE_TYPES = frozenset({"StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap"})

Params = Sequence[tuple[str, str]] | Mapping[str, str]
Timeout = float | tuple[float, float]
Json = dict[str, Any]

_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id (also used for version ids)
_REPRESENTATION = {"Prefer": "return=representation"}

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
class _Request:
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


class FhirClient:
    """Client of one FHIR R4 server (base URL such as ``http://127.0.0.1:18080/fhir``)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: Timeout = (5, 60),
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError("FHIR base URL must be an absolute http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._token = token
        self._session = session or requests.Session()
        self._owns_session = session is None
        self._sleep = sleep
        self._capabilities: Capabilities | None = None

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -------------------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        """The server's CapabilityStatement (``GET /metadata``), read once and cached."""
        if self._capabilities is None:
            statement = self._send(
                _Request("GET", "metadata", "GET metadata", True, expect="CapabilityStatement")
            )
            self._capabilities = Capabilities(statement)
        return self._capabilities

    def read(self, resource_type: str, resource_id: str) -> Json:
        """``GET Type/id``: the current version."""
        return self._send(
            _Request(
                "GET",
                _path(resource_type, resource_id),
                f"GET {resource_type}",
                True,
                expect=resource_type,
            )
        )

    def vread(self, resource_type: str, resource_id: str, version_id: str) -> Json:
        """``GET Type/id/_history/vid``: one version."""
        url = f"{_path(resource_type, resource_id)}/_history/{_path(None, version_id)}"
        return self._send(_Request("GET", url, f"GET {resource_type}", True, expect=resource_type))

    def search(
        self, resource_type: str, params: Params, *, cache_control: str = "no-cache"
    ) -> Json:
        """``GET Type?params`` (with ``Cache-Control: no-cache``): the first searchset page.

        Values are sent as given (percent-encoded by requests); FHIR-escaping ``\\ , $ |`` in
        identifier values is the caller's job (docs/decisions.md#d16). ``cache_control`` =
        ``"no-cache, no-store"`` suits a lookup of at most a few matches: HAPI then runs it
        synchronously and keeps no search (and no paging) state for it.
        """
        return self._send(
            _Request(
                "GET",
                _path(resource_type),
                f"GET {resource_type}",
                True,
                params=params,
                headers={"Cache-Control": cache_control},
                expect="Bundle",
            )
        )

    def search_pages(self, resource_type: str, params: Params) -> Iterator[Json]:
        """Every searchset page, following ``next`` links only under the base URL."""
        page = self.search(resource_type, params)
        seen: set[str] = set()
        while True:
            yield page
            next_url = _next_link(page)
            if next_url is None:
                return
            next_url = urljoin(self.base_url + "/", next_url)
            self._check_under_base(next_url, resource_type)
            if next_url in seen:
                raise FhirServerError(f"GET {resource_type}: the server's next links loop")
            seen.add(next_url)
            page = self._send(
                _Request(
                    "GET",
                    next_url,
                    f"GET {resource_type}",
                    True,
                    headers={"Cache-Control": "no-cache"},
                    expect="Bundle",
                )
            )

    def search_all(self, resource_type: str, params: Params) -> Iterator[Json]:
        """Resources of every entry on every page (matches, ``_include``s and outcomes alike)."""
        for page in self.search_pages(resource_type, params):
            for entry in page.get("entry") or []:
                if isinstance(entry.get("resource"), dict):
                    yield entry["resource"]

    def count(self, resource_type: str, params: Params) -> int:
        """Number of matches (``_summary=count``)."""
        query = [*_param_list(params), ("_summary", "count")]
        total = self.search(resource_type, query).get("total")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise FhirServerError(f"GET {resource_type}: malformed response (no Bundle.total)")
        return total

    # -- writes ------------------------------------------------------------------------------

    def transaction(self, bundle: Json, *, idempotent: bool | None = None) -> Json:
        """POST a transaction Bundle to the base; returns the transaction-response Bundle.

        ``idempotent`` defaults to :func:`is_idempotent_bundle`; only then is the POST retried.
        Entries with ``ifMatch`` turn off the 409 retry (a stale version stays stale: re-read).
        Raises unless the response is a transaction-response with one 2xx entry per entry.
        """
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            raise ValueError("transaction() needs a Bundle of type 'transaction'")
        entries = bundle.get("entry") or []
        guarded = any((e.get("request") or {}).get("ifMatch") for e in entries)
        request = _Request(
            "POST",
            "",
            "POST transaction",
            _pick(idempotent, bundle),
            body=bundle,
            retry_conflict=not guarded,
            expect="Bundle",
        )
        response = self._send(request)
        _check_transaction_response(response, len(entries))
        return response

    def update(
        self, resource_type: str, resource_id: str, resource: Json, if_match: str | None = None
    ) -> Json:
        """``PUT Type/id`` (If-Match ``W/"vid"`` when given; a bare ``vid`` is wrapped)."""
        headers = {**_REPRESENTATION, **({"If-Match": _etag(if_match)} if if_match else {})}
        return self._send(
            _Request(
                "PUT",
                _path(resource_type, resource_id),
                f"PUT {resource_type}",
                True,
                body=resource,
                headers=headers,
                retry_conflict=if_match is None,
                expect=resource_type,
            )
        )

    def create(self, resource_type: str, resource: Json, if_none_exist: str | None = None) -> Json:
        """``POST Type`` (conditional with ``If-None-Exist: identifier=system|value``)."""
        headers = {**_REPRESENTATION, **({"If-None-Exist": if_none_exist} if if_none_exist else {})}
        return self._send(
            _Request(
                "POST",
                _path(resource_type),
                f"POST {resource_type}",
                bool(if_none_exist),
                body=resource,
                headers=headers,
                expect=resource_type,
            )
        )

    def validate(self, resource: Json, profile: str | None = None) -> Json:
        """``POST Type/$validate[?profile=]``: the OperationOutcome, also when served with a 4xx."""
        resource_type = str(resource.get("resourceType", ""))
        params = [("profile", profile)] if profile else None
        return self._send(
            _Request(
                "POST",
                f"{_path(resource_type)}/$validate",
                f"VALIDATE {resource_type}",
                True,
                params=params,
                body=resource,
                expect="OperationOutcome",
                outcome_ok=True,
            )
        )

    def post_conformance(self, resource: Json) -> Json:
        """``PUT Type/id`` of a StructureDefinition, ValueSet, CodeSystem or ConceptMap."""
        resource_type = resource.get("resourceType")
        resource_id = resource.get("id")
        if resource_type not in CONFORMANCE_TYPES or not isinstance(resource_id, str):
            raise ValueError("post_conformance() needs a conformance resource with an id")
        return self.update(resource_type, resource_id, resource)

    # -- transport ---------------------------------------------------------------------------

    def _send(self, request: _Request) -> Json:
        """Run one request under the retry policy; the parsed body or an exception."""
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = self._session.request(
                    request.method,
                    self._absolute(request.url),
                    params=_param_list(request.params),
                    json=request.body,
                    headers=self._headers(request),
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                self._log(request, type(exc).__name__, attempt, started)
                delay = self._transport_delay(request, exc, attempt)
                if delay is None:
                    raise _transport_error(request, exc, attempt) from exc
                self._sleep(delay)
                continue
            self._log(request, response.status_code, attempt, started)
            if response.status_code < 300 or (request.outcome_ok and _is_outcome_reply(response)):
                return _parse_body(request, response)
            delay = self._status_delay(request, response, attempt)
            if delay is None:
                retried = self._retries_status(request, response)
                raise _status_error(request, response, attempt, retried)
            self._sleep(delay)

    def _transport_delay(
        self, request: _Request, exc: requests.RequestException, attempt: int
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

    def _retries_status(self, request: _Request, response: requests.Response) -> bool:
        status = response.status_code
        if not request.idempotent:
            return False
        if status == 409:
            return self.retry.retry_conflict and request.retry_conflict
        return status in self.retry.statuses

    def _status_delay(
        self, request: _Request, response: requests.Response, attempt: int
    ) -> float | None:
        if not self._retries_status(request, response) or attempt >= self.retry.max_attempts:
            return None
        wait = parse_retry_after(response.headers.get("Retry-After"), time.time())
        if wait is None:
            return self.retry.backoff(attempt)
        # Honour the server: never come back earlier than asked; give up if it asks too much.
        return wait if wait <= self.retry.max_delay else None

    def _headers(self, request: _Request) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON}
        if request.body is not None:
            headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        headers.update(request.headers or {})
        return headers

    def _absolute(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        return f"{self.base_url}/{url}" if url else self.base_url

    def _check_under_base(self, url: str, resource_type: str) -> None:
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

    def _log(self, request: _Request, status: int | str, attempt: int, started: float) -> None:
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


def _path(resource_type: str | None, resource_id: str | None = None) -> str:
    """``Type`` or ``Type/id``, refusing anything that could change the URL's shape."""
    if resource_type is not None and not _TYPE.match(resource_type):
        raise ValueError(f"not a FHIR resource type: {resource_type[:40]!r}")
    if resource_id is not None and not _ID.match(resource_id):
        raise ValueError("not a FHIR id (1-64 of A-Z a-z 0-9 - .)")
    return "/".join(part for part in (resource_type, resource_id) if part is not None)


def _pick(idempotent: bool | None, bundle: Json) -> bool:
    return is_idempotent_bundle(bundle) if idempotent is None else idempotent


def _param_list(params: Params | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def _etag(version: str) -> str:
    return version if version.startswith(('W/"', '"')) else f'W/"{version}"'


def _next_link(page: Json) -> str | None:
    for link in page.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request surely never reached the server (safe to retry any method)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _transport_error(request: _Request, exc: requests.RequestException, attempt: int) -> IastmError:
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
    request: _Request, response: requests.Response, attempt: int, retried: bool
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


def _is_outcome_reply(response: requests.Response) -> bool:
    return (
        400 <= response.status_code < 500
        and response.status_code not in (401, 403, 429)
        and outcome_of(response) is not None
    )


def _parse_body(request: _Request, response: requests.Response) -> Json:
    """The JSON resource of a 2xx reply; anything unconfirmed is an error, never a success."""
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


def _check_transaction_response(response: Json, sent: int) -> None:
    entries = response.get("entry") or []
    if (
        response.get("type") != "transaction-response"
        or not isinstance(entries, list)
        or len(entries) != sent
    ):
        raise FhirServerError(
            "POST transaction: malformed response (not a transaction-response "
            "with one entry per request entry)"
        )
    for entry in entries:
        reply = entry.get("response") if isinstance(entry, dict) else None
        status = str(reply.get("status", "")) if isinstance(reply, dict) else ""
        if not status[:1] == "2":
            raise FhirServerError(
                f"POST transaction: malformed response (an entry has status {status[:3] or 'none'})"
            )
