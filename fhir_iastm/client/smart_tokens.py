"""SMART Backend Services access tokens for one target (docs/targets.md#authentication).

* Discovery: ``GET {base}/.well-known/smart-configuration`` -> ``token_endpoint`` (unless
  ``IASTM_FHIR_SMART_TOKEN_URL`` is set); when the document lists the token endpoint's auth
  methods or signing algorithms, ``private_key_jwt`` and our key's algorithm must be among them.
* Token request (RFC 6749 §4.4 + RFC 7523): a client assertion from
  :func:`~fhir_iastm.smart.assertion.sign_assertion` (``typ`` JWT, ``kid``, ``iss`` = ``sub`` =
  client id, ``aud`` = the token URL, ``exp`` 4 minutes ahead: under the 5-minute limit with a
  margin for clock skew) with a fresh ``jti`` for every request, retries included, and the
  narrowest scopes the use needs (``smart.scopes.PUSH_NEEDS`` / ``PULL_NEEDS``).
* The granted ``scope`` is parsed; a missing permission raises before any request to the FHIR
  server is made with the token.
* The token is cached until ``margin`` seconds before it expires; one thread fetches while the
  others wait for its result. :meth:`SmartTokens.invalidate` drops a token the server refused.

No assertion or token reaches a log line or an error message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from fhir_iastm.client.auth import SmartConfig
from fhir_iastm.errors import FhirAuthError, FhirUnavailableError
from fhir_iastm.smart.assertion import ASSERTION_TYPE, sign_assertion
from fhir_iastm.smart.scopes import (
    CLEAN_NEEDS,
    PROFILES_NEEDS,
    PULL_NEEDS,
    PUSH_NEEDS,
    lenient_scopes,
    missing_permissions,
    needed_scopes,
)

log = logging.getLogger(__name__)
#: Lifetime of our assertions: the 5-minute SMART limit less a minute for clock skew.
ASSERTION_LIFETIME = 240
#: What each use needs; ``bulk`` asks for the scope it is given and checks nothing more.
NEEDS: dict[str, dict[str, str]] = {"push": PUSH_NEEDS, "pull": PULL_NEEDS,
                                    "profiles": PROFILES_NEEDS, "clean": CLEAN_NEEDS, "bulk": {}}


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _answer(response: requests.Response) -> str:
    """The server's answer in a few words: RFC 6749 error and description, else the status."""
    body = _json(response)
    error = body.get("error")
    if isinstance(error, str):
        description = str(body.get("error_description") or "")[:200]
        return f"HTTP {response.status_code} {error}" + (f": {description}" if description else "")
    return f"HTTP {response.status_code}"


class SmartTokens:
    """Access tokens of one SMART client for one FHIR base, cached and thread-safe."""

    def __init__(self, base_url: str, config: SmartConfig, session: requests.Session, *,
                 timeout: float | tuple[float, float] = (5, 30), margin: float = 30.0,
                 clock: Callable[[], float] = time.time,
                 tls: dict[str, Any] | None = None) -> None:
        self.base_url, self.config, self.session = base_url.rstrip("/"), config, session
        self.tls = tls or {}  # the target's client certificate and CA bundle, if any
        self.timeout, self.margin, self.clock = timeout, margin, clock
        self.needs = NEEDS[config.purpose]
        self.scope = config.scope or needed_scopes(self.needs, v1=config.v1)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._token_url = config.token_url
        #: Token requests made (the benchmark counts them).
        self.requests = 0

    def token(self) -> str:
        """A valid access token: the cached one, else a new one (one fetch at a time)."""
        token = self._token
        if token is not None and self.clock() < self._expires - self.margin:
            return token
        with self._lock:
            if self._token is not None and self.clock() < self._expires - self.margin:
                return self._token
            self._token, self._expires = self._fetch()
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the server refused it); a newer one fetched meanwhile is kept."""
        with self._lock:
            if self._token == token:
                self._token, self._expires = None, 0.0

    def token_url(self) -> str:
        """The token endpoint: the configured one, else discovery's (read once)."""
        if self._token_url is None:
            self._token_url = self._discover()
        return self._token_url

    def _discover(self) -> str:
        url = f"{self.base_url}/.well-known/smart-configuration"
        response = self._request("GET", url, "SMART discovery", headers={
            "Accept": "application/json"})
        body = _json(response)
        if response.status_code != 200 or not isinstance(body.get("token_endpoint"), str):
            raise FhirAuthError(
                f"IASTM_FHIR_BASE_URL: {self.base_url}/.well-known/smart-configuration gave no "
                f"token_endpoint ({_answer(response)}); set IASTM_FHIR_SMART_TOKEN_URL or check "
                f"the server", status=response.status_code)
        methods = body.get("token_endpoint_auth_methods_supported")
        if isinstance(methods, list) and "private_key_jwt" not in methods:
            raise FhirAuthError("IASTM_FHIR_SMART_CLIENT_ID: the server's token endpoint does not "
                                f"accept private_key_jwt (it lists {', '.join(map(str, methods))})")
        algs = body.get("token_endpoint_auth_signing_alg_values_supported")
        if isinstance(algs, list) and self.config.alg not in algs:
            raise FhirAuthError(f"IASTM_FHIR_SMART_KEY_FILE: our key signs {self.config.alg}; the "
                                f"server accepts {', '.join(map(str, algs))}")
        return str(body["token_endpoint"])

    def _fetch(self) -> tuple[str, float]:
        token_url = self.token_url()
        for attempt in (1, 2):  # one retry of a transient failure, with a new assertion
            assertion = sign_assertion(self.config.private_jwk, client_id=self.config.client_id,
                                       token_url=token_url, now=int(self.clock()),
                                       lifetime=ASSERTION_LIFETIME)  # a fresh jti each time
            self.requests += 1
            response = self._request("POST", token_url, "SMART token", data={
                "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion, "scope": self.scope})
            if response.status_code in (429, 502, 503, 504) and attempt == 1:
                continue
            return self._accept(response, token_url)
        raise AssertionError("unreachable")  # pragma: no cover

    def _accept(self, response: requests.Response, token_url: str) -> tuple[str, float]:
        body = _json(response)
        if response.status_code in (429, 502, 503, 504):
            raise FhirUnavailableError(f"SMART token endpoint {token_url}: {_answer(response)}",
                                       status=response.status_code)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            setting = ("IASTM_FHIR_SMART_SCOPES_V1 / the client's registered scopes"
                       if body.get("error") == "invalid_scope" else
                       "IASTM_FHIR_SMART_TOKEN_URL" if response.status_code in (404, 405) else
                       "IASTM_FHIR_SMART_CLIENT_ID / IASTM_FHIR_SMART_KEY_FILE")
            raise FhirAuthError(f"{setting}: the token endpoint {token_url} refused: "
                                f"{_answer(response)}", status=response.status_code)
        granted = body.get("scope") if isinstance(body.get("scope"), str) else self.scope
        missing = missing_permissions(lenient_scopes(str(granted)), self.needs)
        if missing:
            raise FhirAuthError(
                f"IASTM_FHIR_SMART_CLIENT_ID: the server granted '{granted}', which lacks "
                f"{', '.join(missing)} needed to {self.config.purpose}; nothing was sent")
        try:
            lifetime = float(body.get("expires_in", 300))
        except (TypeError, ValueError):
            lifetime = 300.0
        return str(body["access_token"]), self.clock() + lifetime

    def _request(self, method: str, url: str, label: str, **kwargs: Any) -> requests.Response:
        started = time.monotonic()
        try:
            response = self.session.request(method, url, timeout=self.timeout,
                                            allow_redirects=False, **self.tls, **kwargs)
        except requests.RequestException as exc:
            log.info("%s -> %s", label, type(exc).__name__)
            raise FhirUnavailableError(f"{label}: {url} unreachable ({type(exc).__name__})"
                                       ) from None
        log.info("%s -> %s %.1fms", label, response.status_code,
                 (time.monotonic() - started) * 1000)
        return response


__all__ = ["ASSERTION_LIFETIME", "SmartTokens"]
