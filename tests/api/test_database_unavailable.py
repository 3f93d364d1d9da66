"""A database that is busy or out of reach for now is answered 503 with ``Retry-After``, an
OperationOutcome ``E_DATABASE_UNAVAILABLE``, and nothing stored (docs/validation.md); other
database errors stay a plain 500."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from fhir_iastm.errors import ERROR_CODE_SYSTEM
from fhir_iastm.service import database_unavailable
from fhir_iastm.storage import Store, writelock
from tests.conftest_storage import sample_raw


def test_a_post_waiting_past_the_write_lock_timeout_is_answered_503(
        store: Store, app_for: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer (here another ``Store`` on the same database: another process) holds the
    write lock longer than the POST may wait (SQLite: the lock file; PostgreSQL: the writers'
    advisory lock)."""
    monkeypatch.setattr(writelock, "WRITERS_TIMEOUT", "200ms")
    app = app_for()
    served = app.extensions["fhir_iastm"].store
    if served.write_lock is not None:
        served.write_lock.timeout_s = 0.2
    client = app.test_client()
    record = sample_raw("DBU-1")
    with store.write():
        busy = client.post("/api/sessions", json=record)
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"
    (issue,) = busy.get_json()["issue"]
    assert issue["code"] == "transient"
    assert issue["details"]["coding"] == [{"system": ERROR_CODE_SYSTEM,
                                           "code": "E_DATABASE_UNAVAILABLE"}]
    assert client.get("/api/sessions/DBU-1").status_code == 404  # nothing stored
    assert client.post("/api/sessions", json=record).status_code == 201


def test_only_a_busy_or_unreachable_database_is_unavailable() -> None:
    locked = OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked"))
    no_table = OperationalError("SELECT", None, sqlite3.OperationalError("no such table: x"))
    unique = IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE constraint failed"))
    lost = OperationalError("SELECT", None, sqlite3.OperationalError("disk I/O error"),
                            connection_invalidated=True)
    assert database_unavailable(locked)
    assert database_unavailable(lost)
    assert not database_unavailable(no_table)
    assert not database_unavailable(unique)
    assert not database_unavailable(ValueError("database is locked"))
