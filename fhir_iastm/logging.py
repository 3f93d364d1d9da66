"""JSON log lines for the service, the worker and the CLI: one object a line, never PHI.

Standard library only. Callers put structured fields in ``extra={"fields": {...}}``; patient
names, birth dates and identifiers never go into a log line.
"""

from __future__ import annotations

import json
import logging

#: what ``json.dumps(body, separators=(",", ":"))`` builds on every call, built once
_LINE = json.JSONEncoder(separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object (message plus the ``fields`` extra)."""

    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body.update(getattr(record, "fields", {}))
        if record.exc_info:
            body["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return _LINE.encode(body)


def configure_logging(level: int = logging.INFO) -> None:
    """Send fhir_iastm logs to stderr as JSON lines (idempotent)."""
    root = logging.getLogger("fhir_iastm")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)


__all__ = ["JsonFormatter", "configure_logging"]
