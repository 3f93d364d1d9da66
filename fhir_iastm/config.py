"""Edge: defaults and the environment variables that configure fhir-iastm (README "Configuration").

Layer: edge helper (standard library only). The core never reads configuration: values read here are
passed into it as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The repository's profiles/ folder (next to the package in a source checkout).
DEFAULT_PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite:///fhir_iastm.db",
    "FHIR_BASE_URL": None,
    "FHIR_TOKEN": None,
    "API_TOKENS": None,
    "CANONICAL_BASE": "https://iastm.example.org/fhir",
    "INCLUDE_CPT": False,
    "CLAIM_US_CORE": False,
    "MAX_BODY_BYTES": 1024 * 1024,
    "PROFILES_DIR": str(DEFAULT_PROFILES_DIR),
    "LOAD_SAMPLES": False,
    "PAGE_SIZE": 50,
    # the facade's public FHIR base URL (links, fullUrls); None: from the request's Host
    "PUBLIC_BASE_URL": None,
    # how many reverse proxies in front are trusted for X-Forwarded-*; 0: none (ignored)
    "TRUSTED_PROXIES": 0,
}

_BOOL_TRUE = {"1", "true", "yes", "on"}


def _coerce(key: str, value: Any) -> Any:
    default = DEFAULTS.get(key)
    if isinstance(value, str) and isinstance(default, bool):
        return value.strip().lower() in _BOOL_TRUE
    if isinstance(value, str) and isinstance(default, int) and not isinstance(default, bool):
        return int(value)
    return value


def from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings from ``IASTM_*`` variables (``DATABASE_URL`` also unprefixed), over the defaults."""
    env = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for key in DEFAULTS:
        if f"IASTM_{key}" in env:
            settings[key] = _coerce(key, env[f"IASTM_{key}"])
    if "DATABASE_URL" in env and "IASTM_DATABASE_URL" not in env:
        settings["DATABASE_URL"] = env["DATABASE_URL"]
    return settings


def parse_api_tokens(spec: str | None) -> dict[str, frozenset[str]]:
    """``token:scope[+scope],…`` -> {token: scopes}; an empty spec means an open service."""
    tokens: dict[str, frozenset[str]] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        token, _, scopes = part.partition(":")
        tokens[token] = frozenset(s for s in scopes.split("+") if s) or frozenset({"read"})
    return tokens


__all__ = ["DEFAULTS", "DEFAULT_PROFILES_DIR", "from_environ", "parse_api_tokens"]
