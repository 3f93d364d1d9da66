"""Structured request logs, one JSON object a line, with no PHI.

A line carries the request id, method, route *rule* (``/api/sessions/<session_id>``, never the
concrete path, which can hold identifiers), status and duration. Query strings and bodies are never
logged: they carry MRNs, names and birth dates.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

access_log = logging.getLogger("fhir_iastm.access")

#: A client's X-Request-Id is kept (echoed and logged) only as a UUID or 16-64 hex digits (a
#: W3C trace id); else a new one is made. Free text there could carry PHI (an MRN, a name) into
#: the logs, or forge log lines.
REQUEST_ID = re.compile(r"[0-9a-fA-F]{16,64}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def request_id(given: str | None) -> str:
    """The client's request id when it has the shape of ``REQUEST_ID``, else a fresh one."""
    if given and REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _start() -> None:
    g.request_id = request_id(request.environ.get("HTTP_X_REQUEST_ID"))
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


__all__ = ["REQUEST_ID", "install_request_logging", "request_id"]
