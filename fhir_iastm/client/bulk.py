"""A Bulk Data client (Bulk Data Access IG 2.0.0): kick-off, bounded polling, NDJSON download.

``BulkClient(base, auth=...)`` authenticates with the target's credentials
(:class:`~fhir_iastm.client.auth.TargetAuth`, as the push's client does: a static bearer token,
HTTP basic, extra headers, mutual TLS, or a SMART backend service whose tokens come from
``client.smart_tokens``: discovery, a fresh signed assertion per token request, the cached
token). A SMART token the server refuses (401, or an ``expired`` OperationOutcome) on the kick-off,
a status poll or a file download is replaced once and the request repeated. The kick-off sends
``Cache-Control: no-cache``; polling honours ``Retry-After`` (also on 429) but waits at least
``min_wait`` and at most ``max_retry_after`` seconds a time and gives up after ``max_wait``
seconds in total; files are streamed line by line with ``Accept: application/fhir+ndjson``.
Knows no record: the caller maps what it downloads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from fhir_iastm.client.auth import SmartConfig, TargetAuth, checked_alg
from fhir_iastm.client.smart_tokens import SmartTokens
from fhir_iastm.client.transport import token_refused
from fhir_iastm.errors import FhirAuthError, FhirServerError, FhirUnavailableError

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"


@dataclass
class SmartCredentials:
    """A registered backend service: its client_id, private JWK (RS384/ES384) and scope."""

    client_id: str
    private_jwk: Mapping[str, Any]
    scope: str = "system/*.rs"

    def config(self) -> SmartConfig:
        """As the token client wants it (the scope is asked for as given)."""
        return SmartConfig(self.client_id, checked_alg(dict(self.private_jwk)), purpose="bulk",
                           scope=self.scope)


def _outcome(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _fail(what: str, response: requests.Response) -> FhirServerError:
    cls = FhirAuthError if response.status_code in (401, 403) else (
        FhirUnavailableError if response.status_code in (429, 502, 503, 504) else FhirServerError)
    return cls(f"{what}: HTTP {response.status_code}", status=response.status_code,
               outcome=_outcome(response))


class BulkClient:
    """Bulk Data export against one FHIR base. ``auth``: the target's credentials; ``token`` and
    ``smart`` are shorthands for ``TargetAuth(token=...)`` / ``TargetAuth(smart=...)``."""

    def __init__(self, base_url: str, *, auth: TargetAuth | None = None,
                 token: str | None = None, smart: SmartCredentials | None = None,
                 session: requests.Session | None = None,
                 max_wait: float = 3600.0, max_retry_after: float = 60.0, min_wait: float = 1.0,
                 timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base_url.rstrip("/")
        self.auth = auth or TargetAuth(token=token, smart=smart.config() if smart else None)
        self.session = session or requests.Session()
        self.auth.configure(self.session)
        self.max_wait, self.max_retry_after, self.min_wait = max_wait, max_retry_after, min_wait
        self.timeout, self.sleep, self.clock = timeout, sleep, clock
        self.tokens = (SmartTokens(self.base, self.auth.smart, self.session, timeout=timeout,
                                   tls=self.auth.tls()) if self.auth.smart else None)

    # -- credentials ------------------------------------------------------------------------------
    def _send(self, method: str, url: str, headers: dict[str, str], *, bearer: bool = True,
              **kwargs: Any) -> requests.Response:
        """One request with the target's credentials (``bearer``: with the token too); a SMART
        token the server refuses is replaced once and the request repeated."""
        for attempt in (1, 2):
            token = self.tokens.token() if bearer and self.tokens is not None else None
            sent = {**headers, **self.auth.static_headers()}
            if not bearer:
                sent.pop("Authorization", None)
            if token is not None:
                sent["Authorization"] = f"Bearer {token}"
            response = self.session.request(method, url, headers=sent, timeout=self.timeout,
                                            **self.auth.tls(), **kwargs)
            if token is None or attempt == 2 or not token_refused(response):
                return response
            assert self.tokens is not None
            response.close()
            self.tokens.invalidate(token)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the protocol -----------------------------------------------------------------------------
    def kick_off(self, path: str = "$export", params: list[tuple[str, str]] | None = None) -> str:
        """Start an export (``path``: ``$export``, ``Patient/$export``, ``Group/<id>/$export``);
        the status URL."""
        headers = {"Accept": FHIR_JSON, "Prefer": "respond-async", "Cache-Control": "no-cache"}
        response = self._send("GET", f"{self.base}/{path}", headers, params=params or [])
        if response.status_code != 202 or "Content-Location" not in response.headers:
            raise _fail("bulk kick-off", response)
        return str(response.headers["Content-Location"])

    def _delay(self, response: requests.Response) -> float:
        try:
            asked = float(response.headers.get("Retry-After", self.min_wait))
        except ValueError:  # an HTTP-date: wait the cap
            asked = self.max_retry_after
        return min(max(asked, self.min_wait), self.max_retry_after)

    def wait(self, status_url: str) -> dict[str, Any]:
        """Poll the status URL until the manifest (bounded by ``max_wait``)."""
        deadline = self.clock() + self.max_wait
        while True:
            response = self._send("GET", status_url, {"Accept": "application/json"})
            if response.status_code == 200:
                return dict(response.json())
            if response.status_code not in (202, 429):
                raise _fail("bulk status", response)
            delay = self._delay(response)
            if self.clock() + delay > deadline:
                raise FhirUnavailableError(f"bulk export not done after {self.max_wait:.0f} s "
                                           f"({response.headers.get('X-Progress', 'no progress')})")
            self.sleep(delay)

    def resources(self, manifest: Mapping[str, Any], key: str = "output"
                  ) -> Iterator[dict[str, Any]]:
        """Every resource of the manifest's files (``key``: output, error or deleted), streamed."""
        bearer = bool(manifest.get("requiresAccessToken"))
        for item in manifest.get(key) or []:
            with self._send("GET", item["url"], {"Accept": NDJSON}, bearer=bearer,
                            stream=True) as response:
                if response.status_code != 200:
                    raise _fail("bulk download", response)
                for line in response.iter_lines(decode_unicode=True):
                    if line:
                        yield json.loads(line)

    def delete(self, status_url: str) -> None:
        """Cancel an export, or tell the server its files may go."""
        response = self._send("DELETE", status_url, {})
        if response.status_code not in (200, 202, 404):
            raise _fail("bulk delete", response)


__all__ = ["BulkClient", "SmartCredentials"]
