"""A Bulk Data client (Bulk Data Access IG 2.0.0): kick-off, bounded polling, NDJSON download.

``BulkClient(base)`` authenticates with a static bearer token or as a SMART backend service
(:class:`SmartCredentials`; the tokens come from ``client.smart_tokens``, as the push's do:
discovery, a fresh signed assertion per token request, the cached token). The kick-off sends
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

from fhir_iastm.client.auth import SmartConfig, checked_alg
from fhir_iastm.client.smart_tokens import SmartTokens
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
    """Bulk Data export against one FHIR base."""

    def __init__(self, base_url: str, *, token: str | None = None,
                 smart: SmartCredentials | None = None, session: requests.Session | None = None,
                 max_wait: float = 3600.0, max_retry_after: float = 60.0, min_wait: float = 1.0,
                 timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base_url.rstrip("/")
        self.token, self.smart = token, smart
        self.session = session or requests.Session()
        self.max_wait, self.max_retry_after, self.min_wait = max_wait, max_retry_after, min_wait
        self.timeout, self.sleep, self.clock = timeout, sleep, clock
        self.tokens = (SmartTokens(self.base, smart.config(), self.session, timeout=timeout)
                       if smart is not None else None)

    # -- credentials ------------------------------------------------------------------------------
    def _bearer(self) -> dict[str, str]:
        if self.tokens is not None:
            return {"Authorization": f"Bearer {self.tokens.token()}"}
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # -- the protocol -----------------------------------------------------------------------------
    def kick_off(self, path: str = "$export", params: list[tuple[str, str]] | None = None) -> str:
        """Start an export (``path``: ``$export``, ``Patient/$export``, ``Group/<id>/$export``);
        the status URL."""
        headers = {"Accept": FHIR_JSON, "Prefer": "respond-async", "Cache-Control": "no-cache",
                   **self._bearer()}
        response = self.session.get(f"{self.base}/{path}", params=params or [], headers=headers,
                                    timeout=self.timeout)
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
            response = self.session.get(status_url, timeout=self.timeout,
                                        headers={"Accept": "application/json", **self._bearer()})
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
        headers = {"Accept": NDJSON, **(self._bearer() if manifest.get("requiresAccessToken")
                                        else {})}
        for item in manifest.get(key) or []:
            with self.session.get(item["url"], headers=headers, stream=True,
                                  timeout=self.timeout) as response:
                if response.status_code != 200:
                    raise _fail("bulk download", response)
                for line in response.iter_lines(decode_unicode=True):
                    if line:
                        yield json.loads(line)

    def delete(self, status_url: str) -> None:
        """Cancel an export, or tell the server its files may go."""
        response = self.session.delete(status_url, timeout=self.timeout, headers=self._bearer())
        if response.status_code not in (200, 202, 404):
            raise _fail("bulk delete", response)


__all__ = ["BulkClient", "SmartCredentials"]
