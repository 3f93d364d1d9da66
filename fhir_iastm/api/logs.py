"""Structured request logs, one JSON object a line, with no PHI.

A line carries the request id, method, route *rule* (``/api/sessions/<session_id>``, never the
concrete path, which can hold identifiers), status and duration. Query strings and bodies are never
logged: they carry MRNs, names and birth dates.
"""

from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, Response, g, request

access_log = logging.getLogger("fhir_iastm.access")


def _start() -> None:
    g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    duration_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    response.headers["X-Request-Id"] = g.get("request_id", "")
    rule = request.url_rule.rule if request.url_rule else "<unmatched>"
    access_log.info(
        "request",
        extra={
            "fields": {
                "request_id": g.get("request_id"),
                "method": request.method,
                "route": rule,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 2),
                "actor": g.get("actor"),
            }
        },
    )
    return response


def install_request_logging(app: Flask) -> None:
    """Attach request-id and access-log hooks."""
    app.before_request(_start)
    app.after_request(_finish)


__all__ = ["install_request_logging"]
