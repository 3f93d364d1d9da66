"""The FHIR resource write path (``storage/fhir_write.py``): every version keeps its own body
although the current one is stored once, retracted and revived resources, a bounded number of
statements per record version, and migration 0003 on existing history rows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, text

from fhir_iastm.storage import ResourceSet, ResourceWrite, Store, driver
from fhir_iastm.storage.engine import alembic_config, current_revision, migrate
from fhir_iastm.storage.fhir_types import JsonText
from fhir_iastm.storage.fhir_write import write_many, write_resources
from tests.conftest_storage import with_text_bodies


def _proc(rid: str, note: str, shared: bool = False) -> ResourceWrite:
    body = {"resourceType": "Procedure", "id": rid, "status": "completed", "note": [note]}
    return ResourceWrite("Procedure", rid, body, f"hash-{note}", shared,
                         tokens=(("status", "", "completed"), ("identifier", "urn:x", rid)),
                         refs=(("subject", "Patient", "p1"),),
                         dates=(("date", "2025-01-01T00:00:00.000000",
                                 "2025-01-01T23:59:59.999999"),))


def _write(store: Store, session: str, key: str, *items: ResourceWrite, now: str) -> None:
    with store.write() as conn:
        write_resources(conn, session, ResourceSet(key, items), now)


def _bodies(store: Store, rid: str) -> list[tuple[int, bool, Any]]:
    """(version, gone, note) of every version, by vread and by the history, which agree."""
    history = store.resource_history("Procedure", rid, 100)
    read = [store.read_resource("Procedure", rid, h.version) for h in history]
    assert [(r.version, r.gone, r.body) for r in read if r is not None] \
        == [(h.version, h.gone, h.body) for h in history]
    return [(h.version, h.gone, h.body["note"][0]) for h in reversed(history)]


def test_every_version_keeps_its_body(store: Store) -> None:
    t = [f"2026-01-01T00:00:0{i}.000000" for i in range(5)]
    _write(store, "S1", "k1", _proc("a", "a1"), _proc("b", "b1"), now=t[0])
    _write(store, "S1", "k1", _proc("a", "a2"), now=t[1])  # a changes, b is retracted
    _write(store, "S1", "k1", _proc("a", "a2"), now=t[2])  # nothing changes
    _write(store, "S1", "k1", _proc("a", "a3"), _proc("b", "b2"), now=t[3])  # b revived
    _write(store, "S1", "k1", _proc("a", "a3"), _proc("b", "b3"), now=t[4])
    assert _bodies(store, "a") == [(1, False, "a1"), (2, False, "a2"), (3, False, "a3")]
    assert _bodies(store, "b") == [(1, False, "b1"), (2, True, "b1"), (3, False, "b2"),
                                   (4, False, "b3")]
    current = store.read_resource("Procedure", "b")
    assert current is not None
    assert (current.version, current.body["note"], current.last_updated) == (4, ["b3"], t[4])


def test_resources_are_told_apart_by_type_and_id(store: Store) -> None:
    """The locking read looks resources up by (type, id): a session's Procedure ``x`` and
    another session's Observation ``x`` are two resources; a record that emits the Observation
    instead of its Procedure retracts the Procedure."""
    obs = ResourceWrite("Observation", "x", {"resourceType": "Observation", "id": "x"},
                        "hash-o", False)
    t = [f"2026-01-01T00:00:0{i}.000000" for i in range(3)]
    _write(store, "S1", "k1", _proc("x", "p1"), now=t[0])
    _write(store, "S2", "k2", obs, now=t[1])  # S1's Procedure x is not S2's to retract
    assert _bodies(store, "x") == [(1, False, "p1")]
    _write(store, "S1", "k1", obs, now=t[2])  # S1 takes Observation x, drops Procedure x
    assert _bodies(store, "x") == [(1, False, "p1"), (2, True, "p1")]
    current = store.read_resource("Observation", "x")
    assert current is not None
    assert (current.version, current.last_updated) == (1, t[1])


def test_shared_resource_versions_keep_their_bodies(store: Store) -> None:
    now = "2026-01-01T00:00:00.000000"
    _write(store, "S1", "2025|S1", _proc("p", "old", shared=True), now=now)
    _write(store, "S2", "2026|S2", _proc("p", "new", shared=True), now=now)
    _write(store, "S3", "2024|S3", _proc("p", "older", shared=True), now=now)  # loses
    assert _bodies(store, "p") == [(1, False, "old"), (2, False, "new")]


@pytest.mark.parametrize("fast", [True, False], ids=["driver", "sqlalchemy"])
def test_statements_per_record_version_do_not_grow_with_its_resources(
        store: Store, fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted where they run: SQLAlchemy's engine events, and the driver's own calls
    (``driver.FAST``: its reads and COPYs, and on SQLite every statement, go to the DBAPI
    connection, which SQLAlchemy does not see)."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    def counted(name: str) -> Any:
        real = getattr(driver, name)

        def call(conn: Any, sql: Any, *args: Any) -> Any:
            seen.append(sql if isinstance(sql, str) else repr(sql))
            return real(conn, sql, *args)
        return call

    monkeypatch.setattr(driver, "FAST", fast)
    direct = fast and store.engine.dialect.name == "sqlite"
    for name in ("select_rows", "_copy", *(("_many",) if direct else ())) if fast else ():
        monkeypatch.setattr(driver, name, counted(name))
    now = "2026-01-01T00:00:00.000000"
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        for session, size in (("S1", 2), ("S2", 40)):
            seen.clear()
            _write(store, session, "k", *(_proc(f"{session}-{i}", "x") for i in range(size)),
                   now=now)
            statements = [s for s in seen if not s.startswith(("BEGIN", "COMMIT"))
                          and "pg_advisory_xact_lock" not in s and s != "writers"]
            # current rows, resources, history, token, link, date: one statement each
            # (through the driver the new rows' keys come from one more, ``driver.new_keys``)
            assert len(statements) == (7 if fast else 6), statements
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_migration_0003_keeps_bodies_of_existing_histories(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(store.engine, "0002")
    with store.write() as conn:  # a resource at version 2 written the 0002 way: bodies twice
        conn.execute(text(
            "INSERT INTO fhir_resource (pk, res_type, res_id, version, last_updated, gone, shared,"
            " session_id, source_key, content_hash, body) VALUES (1, 'Procedure', 'a', 2,"
            " 't2', 0, 0, 'S', 'k', 'h', '{\"note\": [\"a2\"]}')"))
        conn.execute(text(
            "INSERT INTO fhir_resource_version (res_pk, version, last_updated, gone, body) VALUES"
            " (1, 1, 't1', 0, '{\"note\": [\"a1\"]}'), (1, 2, 't2', 0, '{\"note\": [\"a2\"]}')"))
    migrate(store.engine, "0004")
    assert current_revision(store.engine) == "0004"
    with store.read() as conn:
        stored = conn.execute(text(
            "SELECT version, body FROM fhir_resource_version ORDER BY version")).all()
    assert [(v, b is None) for v, b in stored] == [(1, False), (2, True)]
    assert _bodies(store, "a") == [(1, False, "a1"), (2, False, "a2")]
    cfg = alembic_config()
    with store.engine.connect() as conn:  # downgrade restores every body
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
        conn.commit()
    with store.read() as conn:
        assert conn.execute(text(
            "SELECT count(*) FROM fhir_resource_version WHERE body IS NULL")).scalar() == 0


def _script(run: str) -> list[tuple[str, ResourceSet, str]]:
    """Record versions that create, change, retract, revive and share resources; ids prefixed
    by ``run`` so that two runs can share a database."""

    def proc(rid: str, note: str, shared: bool = False) -> ResourceWrite:
        return _proc(f"{run}{rid}", note, shared)

    steps = [
        ("S1", "2025|S1", (proc("a", "a1"), proc("b", "b1"), proc("p", "old", True))),
        ("S1", "2025|S1", (proc("a", "a2"),)),  # b retracted
        ("S1", "2025|S1", (proc("a", "a3"), proc("b", "b2"))),  # b revived
        ("S2", "2026|S2", (proc("p", "new", True), proc("c", "c1"))),
        ("S3", "2024|S3", (proc("p", "older", True), proc("d", "d1"))),  # loses p
        ("S2", "2026|S2", (proc("p", "new", True), proc("c", "c2"))),
        ("S1", "2027|S1", (proc("a", "a3"), proc("b", "b2"), proc("p", "new", True))),  # source
        ("S1", "2027|S1", (proc("a", "a3"), proc("p", "newest", True))),  # b gone again
        ("S1", "2027|S1", (proc("a", "a4"), proc("b", "b3"))),
    ]
    return [(f"{run}{sid}", ResourceSet(f"{key}{run}", items), f"2026-01-01T00:00:{i:02d}.0")
            for i, (sid, key, items) in enumerate(steps)]


def _dump(store: Store, run: str) -> str:
    """Every row the runs wrote (keys as type/id), with the run's prefix taken out."""
    pk = "(SELECT res_type || '/' || res_id FROM fhir_resource r WHERE r.pk = t.res_pk)"
    queries = [
        "SELECT res_type, res_id, version, last_updated, gone, shared, session_id, source_key,"
        " content_hash, body FROM fhir_resource t ORDER BY res_type, res_id",
        f"SELECT {pk} AS k, version, last_updated, gone, body FROM fhir_resource_version t"
        " ORDER BY k, version",
        *(f"SELECT {pk} AS k, t.* FROM {table} t" for table in
          ("fhir_token", "fhir_string", "fhir_date", "fhir_link")),
    ]
    with store.read() as conn:
        tables = [[[v for k, v in row._mapping.items() if k != "res_pk"]
                   for row in conn.execute(text(sql))] for sql in queries]
    mine = [[row for row in rows if any(run in str(v) for v in row)] for rows in tables]
    return json.dumps([sorted(rows, key=str) for rows in mine], default=str).replace(run, "")


def test_bodies_sent_as_json_text_write_the_same_rows(store: Store) -> None:
    """The import's workers send bodies already serialized (``JsonText``): same rows, byte for
    byte, as the bodies sent as dicts, on either database."""
    for run, text_bodies in (("qT", False), ("qU", True)):
        script = _script(run)
        if text_bodies:
            script = [(session, with_text_bodies(rset), now) for session, rset, now in script]
            assert isinstance(script[0][1].resources[0].body, JsonText)
        with store.write() as conn:
            write_many(conn, script)
    assert _dump(store, "qU") == _dump(store, "qT")
    assert _bodies(store, "qUb") == [(1, False, "b1"), (2, True, "b1"), (3, False, "b2"),
                                     (4, True, "b2"), (5, False, "b3")]


@pytest.mark.parametrize("committed", [0, 3])
def test_one_batch_writes_what_one_transaction_per_record_writes(store: Store,
                                                                 committed: int) -> None:
    """``write_many`` of a batch == ``write_resources`` of each record version, row for row
    (the first ``committed`` record versions stored before the batch)."""
    for session, rset, now in _script("qA"):
        with store.write() as conn:
            write_resources(conn, session, rset, now)
    script = _script("qB")
    for session, rset, now in script[:committed]:
        with store.write() as conn:
            write_resources(conn, session, rset, now)
    with store.write() as conn:
        write_many(conn, script[committed:])
    assert _dump(store, "qB") == _dump(store, "qA")
    assert _bodies(store, "qBb") == [(1, False, "b1"), (2, True, "b1"), (3, False, "b2"),
                                     (4, True, "b2"), (5, False, "b3")]
