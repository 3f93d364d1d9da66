"""The one request-body reader of every endpoint that takes JSON.

The body is read in blocks and counted against ``MAX_BODY_BYTES`` whatever its framing: with a
``Content-Length`` over the limit, or a chunked body that grows past it, the answer is 413 (a
chunked body is never cut short and parsed). The whole body must arrive within
``BODY_TIMEOUT_S`` seconds (else 408), so a client that trickles bytes cannot hold a thread.
The bytes are then parsed by the strict reader (``fhir_iastm.jsonin``): duplicate keys, lone
surrogates, over-deep nesting and over-long strings are a 400 naming where.
"""

from __future__ import annotations

import time
from typing import IO, Any

from flask import current_app, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge, UnsupportedMediaType

from fhir_iastm.errors import BadBodyError, BodyTimeoutError, Issue
from fhir_iastm.jsonin import JsonInputError, JsonLimits, parse

JSON_TYPES = ("application/json", "application/fhir+json")
BLOCK = 64 * 1024


def _stream() -> IO[bytes]:
    environ = request.environ
    if request.content_length is None and environ.get("wsgi.input_terminated"):
        # A chunked body: the server de-chunks it; we count (werkzeug would cut it at the limit).
        return environ["wsgi.input"]  # type: ignore[no-any-return]
    return request.stream


def read_body(limit: int, timeout_s: float) -> bytes:
    """The raw body: 413 past ``limit`` bytes, 408 when not complete within ``timeout_s``."""
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"the body is over the limit of {limit} bytes")
    stream, size = _stream(), 0
    parts: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            block = stream.read(min(BLOCK, limit + 1 - size))
        except (TimeoutError, ClientDisconnected) as exc:
            # a socket timeout (fhir_iastm.serving) reaches us as is or wrapped by werkzeug
            if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
                raise BodyTimeoutError(
                    f"the body did not arrive within {timeout_s:g} s") from None
            raise
        if not block:
            return b"".join(parts)
        parts.append(block)
        size += len(block)
        if size > limit:
            raise RequestEntityTooLarge(f"the body is over the limit of {limit} bytes")
        if time.monotonic() > deadline:
            raise BodyTimeoutError(f"the body did not arrive within {timeout_s:g} s")


def json_body() -> Any:
    """The request's JSON value: 415 for another media type, 413/408 (``read_body``), 400 for
    anything the strict reader refuses, with the path of the offending value."""
    mimetype = request.mimetype or ""
    if mimetype not in JSON_TYPES:
        given = mimetype or "none"
        raise UnsupportedMediaType(f"send the record as application/json, not '{given}'")
    settings = current_app.extensions["fhir_iastm"].settings
    data = read_body(settings.max_body_bytes, settings.body_timeout_s)
    limits = JsonLimits(settings.max_json_depth, settings.max_json_string)
    try:
        return parse(data, limits, source="the body")
    except JsonInputError as exc:
        raise BadBodyError(exc.message, [
            Issue("error", "structure", exc.where, exc.message, "E_BAD_REQUEST")
        ]) from None


__all__ = ["JSON_TYPES", "json_body", "read_body"]
