"""Store fixtures (registered by ``tests/conftest.py`` through ``pytest_plugins``).

* ``pg_url`` (session): ``TEST_DATABASE_URL`` if set, else ``scripts/postgres start``; the tests get
  a private database created for this run (dropped at the end), so parallel runs never collide.
  A PostgreSQL that cannot be started FAILS the tests that need it — never a skip.
* ``store`` (parametrized sqlite | postgresql; the PostgreSQL variant is marked ``integration``),
  ``sqlite_store``, ``pg_store``: migrated, empty stores with a controllable clock (``clock``).
* ``make_record``: a factory of (SessionRecord, raw dict) pairs derived from the good-01 example.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fhir_iastm.records.model import SessionRecord
from fhir_iastm.records import load_record
from fhir_iastm.storage import Store
from fhir_iastm.storage.engine import alembic_config, make_engine, normalize_url
from fhir_iastm.storage.fhir_types import JsonText, ResourceSet, compact_json

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "data" / "examples" / "good-01-lateral-epicondylitis-graston.json"
TABLES = ("records, record_versions, sync_state, outbox, audit, fhir_resource, fhir_resource_version, "
          "fhir_token, fhir_string, fhir_date, fhir_link, pushed_canonical_base, auth_client, "
          "auth_jti, auth_key, export_job, audit_event, audit_event_entity")


class FakeClock:
    """A settable UTC clock for the store (lease expiry, backoff) — advance it by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _start_postgres() -> str:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "postgres"), "start"], capture_output=True, text=True, timeout=600
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        pytest.fail(f"scripts/postgres start failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}")
    return lines[-1]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a private, migrated PostgreSQL database for this test run."""
    base = normalize_url(os.environ.get("TEST_DATABASE_URL") or _start_postgres())
    name = f"fhir_iastm_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 — any failure here must fail the run, not skip it
        pytest.fail(f"PostgreSQL at {base} is not usable: {exc}")
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    store = Store(url)
    store.migrate()
    store.close()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def clock() -> FakeClock:
    """The clock the ``store`` fixtures use."""
    return FakeClock()


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """A migrated store in a fresh SQLite file."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", clock=clock)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def pg_store(pg_url: str, clock: FakeClock) -> Iterator[Store]:
    """A migrated, emptied store on the run's PostgreSQL database."""
    store = Store(pg_url, clock=clock)
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> Store:
    """The same test on SQLite and on the real PostgreSQL."""
    name = "sqlite_store" if request.param == "sqlite" else "pg_store"
    return request.getfixturevalue(name)


def downgrade_to(store: Store, revision: str) -> None:
    """Take the store's schema down to ``revision`` (``store.migrate()`` brings it back)."""
    from alembic import command

    cfg = alembic_config()
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()


def sample_raw(
    session_id: str = "RBPT-2025-000311", version: int = 1, **changes: Any
) -> dict[str, Any]:
    """The good-01 example with another session_id / record_version and top-level changes."""
    raw = copy.deepcopy(json.loads(EXAMPLE.read_text()))
    raw.update(session_id=session_id, record_version=version, **changes)
    return raw


@pytest.fixture
def make_record() -> Callable[..., tuple[SessionRecord, dict[str, Any]]]:
    """``make_record(session_id, version, **changes) -> (record, raw)``."""

    def make(session_id: str = "RBPT-2025-000311", version: int = 1, **changes: Any):
        raw = sample_raw(session_id, version, **changes)
        return load_record(raw), raw

    return make


def with_text_bodies(rset: ResourceSet) -> ResourceSet:
    """The same set with every body as its :class:`JsonText` (what the store would write)."""
    return replace(rset, resources=tuple(
        replace(r, body=JsonText(compact_json(r.body))) for r in rset.resources))
