"""A registered client's JWK set fetched from its JWKS URL, cached, honouring key rotation.

A set is kept ``ttl`` seconds (default 300, or less when the response's ``Cache-Control:
max-age`` says so). A request for a fresh copy (the verifier asks when an assertion names a
``kid`` the cached set lacks: the client rotated its keys) refetches at most once per
``min_refresh`` seconds per URL, so unknown kids cannot make us hammer the client's server.
A fetch failure keeps the last good set; with none, an empty set (the assertion then fails with
``invalid_client``, no key).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

log = logging.getLogger(__name__)
_MAX_AGE = re.compile(r"max-age=(\d+)")
#: Largest JWK set accepted, bytes.
MAX_JWKS_BYTES = 256 * 1024


class JwksCache:
    """``get(url, fresh)`` -> the JWK set at ``url`` (a dict with ``keys``)."""

    def __init__(self, *, ttl: float = 300.0, min_refresh: float = 10.0, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 session: requests.Session | None = None) -> None:
        self.ttl, self.min_refresh, self.timeout = ttl, min_refresh, timeout
        self.clock = clock
        self.session = session or requests.Session()
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, float, dict[str, Any]]] = {}  # fetched, expires, set

    def get(self, url: str, fresh: bool = False) -> dict[str, Any]:
        """The cached set, refetched when expired (or when ``fresh`` and not fetched lately)."""
        now = self.clock()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None:
            fetched, expires, jwks = cached
            if now < expires and not (fresh and now - fetched >= self.min_refresh):
                return jwks
        fetched_set, max_age = self._fetch(url)
        if fetched_set is None:
            return cached[2] if cached is not None else {"keys": []}
        ttl = self.ttl if max_age is None else min(self.ttl, max_age)
        with self._lock:
            self._cache[url] = (now, now + ttl, fetched_set)
        return fetched_set

    def _fetch(self, url: str) -> tuple[dict[str, Any] | None, float | None]:
        try:
            resp = self.session.get(url, timeout=self.timeout,
                                    headers={"Accept": "application/json"})
            body = resp.content[: MAX_JWKS_BYTES + 1]
            if resp.status_code != 200 or len(body) > MAX_JWKS_BYTES:
                log.warning("jwks fetch failed", extra={"status": resp.status_code})
                return None, None
            jwks = resp.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("jwks fetch failed", extra={"error": type(exc).__name__})
            return None, None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            return None, None
        match = _MAX_AGE.search(resp.headers.get("Cache-Control", ""))
        return jwks, float(match.group(1)) if match else None


__all__ = ["MAX_JWKS_BYTES", "JwksCache"]
