"""In-memory SQLite URLs recognized in one place (``storage.engine.memory_database``): one
shared connection, no lock file, never "a missing file"."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from fhir_iastm.storage.engine import is_memory, make_engine, missing_sqlite_file
from fhir_iastm.storage.writelock import lock_path

MEMORY = ("sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true")


@pytest.mark.parametrize("url", MEMORY)
def test_every_in_memory_form_is_one_shared_database(url: str) -> None:
    parsed = make_url(url)
    assert is_memory(parsed)
    assert missing_sqlite_file(url) == "memory"
    assert lock_path(parsed.database) is None
    engine = make_engine(url)
    assert isinstance(engine.pool, StaticPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:  # another checkout sees the same database
        assert conn.execute(text("SELECT x FROM t")).scalar_one() == 1
    engine.dispose()


def test_a_file_is_not_in_memory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    assert not is_memory(make_url(url))
    assert missing_sqlite_file(url) == f"{tmp_path}/s.db"
    assert lock_path(f"{tmp_path}/s.db") == f"{tmp_path}/s.db-writer.lock"
    assert not is_memory(make_url("postgresql+psycopg://u@h/db"))
