"""Helpers shared by the API tests (no tests here): an app on a fresh SQLite file, its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask

from fhir_iastm.api import create_app
from fhir_iastm.config import Settings


def sqlite_app(path: Path, **settings: Any) -> Flask:
    """The service on the SQLite file ``path``, open, with no FHIR server."""
    return create_app(Settings(database_url=f"sqlite:///{path}", **settings))


#: Tables of the service's own bookkeeping, not of the stored data: the audit log and the
#: AuditEvents (reads are audited by design), export jobs (a kick-off queues one), the signing
#: key (made on first use).
BOOKKEEPING = ("audit", "audit_event", "audit_event_entity", "export_job", "auth_key")


def stored_rows(app: Flask) -> list[str]:
    """Every stored row but the bookkeeping tables', as SQL text."""
    url = app.extensions["fhir_iastm"].settings.database_url
    skip = tuple(f'INSERT INTO "{table}"' for table in BOOKKEEPING)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return [line for line in db.iterdump() if not line.startswith(skip)]
