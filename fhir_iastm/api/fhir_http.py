"""The HTTP side of the FHIR facade (R4 http.html) — content negotiation, the base
URL of links, ``Prefer: handling``, conditional reads and the response writer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from flask import Response, current_app, g, request

from fhir_iastm.api.errors import FHIR_JSON
from fhir_iastm.errors import Issue, NotAcceptableError, operation_outcome
from fhir_iastm.jsonfast import dumps_compact
from fhir_iastm.storage import StoredResource

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json",
                          "application/json+fhir"})
FHIR_VERSIONS = frozenset({"4.0", "4.0.1"})
_ACCEPTED = frozenset({FHIR_JSON, "application/json", "application/*", "*/*",
                       "application/json+fhir"})


def negotiate() -> None:
    """406 unless the response may be FHIR JSON of R4 (``_format`` wins over ``Accept``)."""
    fmt = request.args.get("_format")
    if fmt is not None:
        if fmt.split(";")[0].strip() not in JSON_FORMATS:
            raise NotAcceptableError(f"_format '{fmt}' is not served; use json")
        return
    header = request.headers.get("Accept", "").strip()
    if not header:
        return
    ranges = []
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        options = dict(p.partition("=")[::2] for p in params)
        if options.get("q", "1").strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        version = options.get("fhirVersion")
        if version is not None and version not in FHIR_VERSIONS:
            raise NotAcceptableError(f"fhirVersion {version} is not served; this is R4 (4.0)")
        ranges.append(media.lower())
    if not any(m in _ACCEPTED for m in ranges):
        raise NotAcceptableError("only application/fhir+json (or application/json) is served")


def fhir_base() -> str:
    """Our absolute FHIR base: ``IASTM_PUBLIC_BASE_URL``, else the request's (its Host, path
    prefix, and ``X-Forwarded-*`` only when ``IASTM_TRUSTED_PROXIES`` trusts them)."""
    base: str | None = g.get("fhir_base")
    if base is None:  # once per request (the view's links, then the AuditEvent's site)
        public = current_app.extensions["fhir_iastm"].settings.public_base_url
        base = str(public).rstrip("/") if public else request.url_root.rstrip("/") + "/fhir"
        g.fhir_base = base
    return base


def strict() -> bool:
    """``Prefer: handling=strict`` (lenient is the default)."""
    prefer = request.headers.get("Prefer", "")
    return any(p.strip().replace(" ", "") == "handling=strict" for p in prefer.split(","))


def pretty() -> bool:
    """``_pretty=true``: the answer is indented."""
    return request.args.get("_pretty") == "true"


def respond(body: dict[str, Any], status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    """FHIR JSON, indented when ``_pretty=true``."""
    text = (json.dumps(body, indent=2, ensure_ascii=False) if pretty()
            else dumps_compact(body))
    return Response(text, status=status, mimetype=FHIR_JSON, headers=headers)


def respond_text(text: str) -> Response:
    """200 with FHIR JSON already written compactly (what :func:`respond` writes without
    ``_pretty``)."""
    return Response(text, status=200, mimetype=FHIR_JSON)


def _modified(stored: StoredResource) -> datetime:
    return datetime.fromisoformat(stored.last_updated).replace(tzinfo=UTC)


def version_headers(stored: StoredResource) -> dict[str, str]:
    """``ETag: W/"n"`` and ``Last-Modified`` of a resource version."""
    return {"ETag": f'W/"{stored.version}"',
            "Last-Modified": format_datetime(_modified(stored).replace(microsecond=0),
                                             usegmt=True)}


def not_modified(stored: StoredResource) -> bool:
    """True when ``If-None-Match`` names this version or ``If-Modified-Since`` is not older."""
    match = request.headers.get("If-None-Match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or f'"{stored.version}"' in tags
    since = request.headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _modified(stored).replace(microsecond=0) <= when


def ignored_outcome(names: list[str], base: str) -> dict[str, Any]:
    """The searchset's OperationOutcome for parameters ignored under lenient handling, its
    project URLs under the canonical ``base``."""
    issues = [Issue("warning", "not-supported", diagnostics=f"search parameter '{n}' is not "
                    "supported and was ignored", details="W_PARAM_IGNORED") for n in names]
    return operation_outcome(issues, base=base)


__all__ = ["fhir_base", "ignored_outcome", "negotiate", "not_modified", "pretty", "respond",
           "respond_text", "strict", "version_headers"]
