"""The write path's fast paths write exactly what the plain code wrote: the JSON encoders built
once (stored bodies, content hashes), uuid5 text without ``uuid.UUID``, the cached date bounds
, records handed to the store with their bodies already serialized (``JsonText``: the resources
and the record body) and the import's pool of workers (preparing and storing batches in turn)
against the in-process import — same rows, byte for byte, on the examples and on generated
records; and orjson (``fhir_iastm.jsonfast``) against the stdlib it replaced."""

from __future__ import annotations

import hashlib
import json
import pickle
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from fhir_iastm import jsonfast, service
from fhir_iastm.facade import extract
from fhir_iastm.facade.dates import date_bounds
from fhir_iastm.facade.extract import content_hash
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.mapping.ids import uuid5_text
from fhir_iastm.storage import Store, driver
from fhir_iastm.storage.fhir_types import JsonText, compact_json
from fhir_iastm.storage.schema import audit, metadata
from tests.conftest_storage import TABLES, FakeClock, with_text_bodies
from tests.strategies import valid_records

EXAMPLES = sorted((Path(__file__).parent / "data" / "examples").glob("good-*.json"))
SETTINGS = MappingSettings()

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(suppress_health_check=[HealthCheck.too_slow])  # slow generation under load is no verdict
@given(_json_values)
def test_the_encoders_write_what_json_dumps_writes(value: Any) -> None:
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert compact_json(value) == compact
    assert compact_json(JsonText(compact)) == compact  # already serialized: written as it is
    if isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert content_hash(value) == hashlib.sha256(text.encode()).hexdigest()


@given(st.uuids(), st.text())
def test_uuid5_text_is_the_text_of_uuid5(space: uuid.UUID, name: str) -> None:
    try:
        expected = str(uuid.uuid5(space, name))
    except UnicodeEncodeError:  # a lone surrogate: refused alike
        with pytest.raises(UnicodeEncodeError):
            uuid5_text(space, name)
        return
    assert uuid5_text(space, name) == expected


def test_cached_date_bounds_still_refuse_every_time() -> None:
    assert date_bounds("2025-03-04T09:00:00+02:00") == ("2025-03-04T07:00:00.000000",
                                                        "2025-03-04T07:00:00.999999")
    for _ in range(2):
        with pytest.raises(ValueError, match="2025-13"):
            date_bounds("2025-13")


class _Pair:
    """Two stores on one fixed clock: records written as prepared, and through pickle with
    their bodies as ``JsonText``."""

    def __init__(self, folder: Path) -> None:
        clock = FakeClock()
        self.paths = [folder / "plain.db", folder / "worker.db"]
        self.stores = [Store(f"sqlite:///{p}", clock=clock) for p in self.paths]
        for store in self.stores:
            store.migrate()

    def write(self, bodies: list[dict[str, Any]]) -> None:
        plain = [service.prepare_record(b, SETTINGS) for b in bodies]
        sent = pickle.loads(pickle.dumps([_as_text(p) for p in plain]))
        assert any(isinstance(r.body, JsonText) for p in sent if isinstance(p, tuple) and p[2]
                   for r in p[2].resources)
        assert all(isinstance(p[1], JsonText) for p in sent if isinstance(p, tuple))
        results = [store.save_records([p for p in prepared if isinstance(p, tuple)],
                                      actor="t")
                   for store, prepared in zip(self.stores, (plain, sent), strict=True)]
        assert repr(results[0]) == repr(results[1])

    def dumps(self) -> list[list[str]]:
        out = []
        for path in self.paths:
            with sqlite3.connect(path) as db:
                out.append(list(db.iterdump()))
        return out

    def close(self) -> None:
        for store in self.stores:
            store.close()


def _as_text(prepared: Any) -> Any:
    if not isinstance(prepared, tuple):
        return prepared
    record, raw, resources, digest = prepared
    return (record, JsonText(compact_json(raw)), resources and with_text_bodies(resources),
            digest)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[_Pair]:
    made = _Pair(tmp_path)
    yield made
    made.close()


def test_worker_results_store_the_rows_of_the_plain_path_on_the_examples(pair: _Pair) -> None:
    bodies = [json.loads(p.read_text()) for p in EXAMPLES]
    pair.write(bodies)
    pair.write(bodies)  # again: every record unchanged
    plain, worker = pair.dumps()
    assert any("fhir_token" in line for line in plain)
    assert plain == worker


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_records(), min_size=1, max_size=4))
def test_worker_results_store_the_rows_of_the_plain_path_on_generated_records(
        bodies: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        made = _Pair(Path(folder))
        try:
            made.write(bodies)
            plain, worker = made.dumps()
        finally:
            made.close()
    assert plain == worker


def _stream() -> list[Any]:
    """The examples 40 times under fresh session ids, an invalid body, second versions of a
    third of them (amended Observations), an identical repeat and a conflicting one."""
    examples = [json.loads(p.read_text()) for p in EXAMPLES]
    bodies: list[Any] = []
    for k in range(40):
        for example in examples:
            body = json.loads(json.dumps(example))
            body["session_id"] = f"{body['session_id']}-{k}"
            bodies.append(body)
    seconds = []
    for body in bodies[::3]:
        second = json.loads(json.dumps(body)) | {"record_version": body["record_version"] + 1}
        if "pain" in second and isinstance(second["pain"].get("post"), int):
            second["pain"]["post"] = (second["pain"]["post"] + 1) % 10
        seconds.append(second)
    conflict = json.loads(json.dumps(bodies[1])) | {"notes": "another text, same version"}
    return bodies + [{"session_id": "broken"}] + seconds + bodies[:5] + [conflict]


def test_the_pool_of_workers_stores_the_rows_of_the_in_process_import(tmp_path: Path) -> None:
    """``import_records`` with ``jobs=2`` (one pool for the run, batches prepared and stored
    by the workers in turn, the first body prepared before the fork) against ``jobs=1``: same
    results, same rows — with second versions (amended Observations, their earlier version read
    from the store), an identical repeat, a conflicting one and invalid records in the input."""
    clock = FakeClock()
    paths = [tmp_path / "one.db", tmp_path / "pool.db"]
    stores = [Store(f"sqlite:///{p}", clock=clock) for p in paths]
    stream = _stream()
    answers = []
    for store, jobs in zip(stores, (1, 2), strict=True):
        store.migrate()
        answers.append([repr(r) for _, r in service.import_records(
            store, iter(stream), SETTINGS, actor="t", jobs=jobs, batch=20)])
        store.close()
    assert answers[0] == answers[1]
    assert sum("new-version" in a for a in answers[0]) == len(range(0, 40 * len(EXAMPLES), 3))
    assert "Conflict" in answers[0][-1]  # a 409 comes back from a worker as it is
    dumps = []
    for path in paths:
        with sqlite3.connect(path) as db:
            dumps.append(list(db.iterdump()))
    assert any("amended" in line for line in dumps[0])
    assert dumps[0] == dumps[1]


def _rows(store: Store) -> dict[str, list[str]]:
    with store.read() as conn:
        return {t.name: sorted(repr(tuple(r)) for r in conn.execute(select(t)))
                for t in metadata.sorted_tables}


def _empty(store: Store) -> None:
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
            return
        for table in reversed(metadata.sorted_tables):  # no AUTOINCREMENT: ids start again
            conn.execute(table.delete())


def test_the_pool_stores_the_rows_of_the_in_process_import_on_each_database(
        store: Store) -> None:
    """The same comparison table by table on SQLite and on the real PostgreSQL (the workers
    open their own connections after the fork)."""
    stream = _stream()[::4]
    tables = []
    for jobs in (1, 2):
        _empty(store)
        answers = [repr(r) for _, r in service.import_records(
            store, iter(stream), SETTINGS, actor="t", jobs=jobs, batch=10)]
        tables.append((answers, _rows(store)))
    assert tables[0][1]["fhir_token"]
    assert tables[0][1]["outbox"]
    assert tables[0] == tables[1]


def test_the_pool_stops_where_the_in_process_import_stops_on_a_database_error(
        tmp_path: Path) -> None:
    """A batch the database refuses (here a trigger refusing one session) fails in its worker
    as it fails in process — after its records before the refused one are stored one
    transaction each — and no later batch is written, although the other worker had prepared
    its batch already."""
    clock = FakeClock()
    example = json.loads(EXAMPLES[0].read_text())
    bodies = [example | {"session_id": f"DBERR-{k:03d}"} for k in range(100)]
    dumps = []
    for jobs in (1, 2):
        path = tmp_path / f"jobs{jobs}.db"
        store = Store(f"sqlite:///{path}", clock=clock)
        store.migrate()
        with sqlite3.connect(path) as db:
            db.execute("CREATE TRIGGER refuse BEFORE INSERT ON records "
                       "WHEN NEW.session_id = 'DBERR-050' BEGIN SELECT RAISE(ABORT, 'no'); END")
        answered: list[str] = []
        results = service.import_records(store, iter(bodies), SETTINGS, actor="t", jobs=jobs,
                                         batch=20)
        with pytest.raises(IntegrityError, match="no"):
            answered.extend(repr(result) for _, result in results)
        store.close()
        assert len(answered) == 40  # the two batches before the refused one
        with sqlite3.connect(path) as db:
            dumps.append(list(db.iterdump()))
            assert db.execute("SELECT count(*) FROM records").fetchone() == (50,)
    assert dumps[0] == dumps[1]


def test_an_in_memory_store_is_imported_in_process() -> None:
    """A forked worker would write its own copy of an in-memory database: there the import
    stores in process whatever ``jobs`` says."""
    store = Store("sqlite://", clock=FakeClock())
    store.migrate()
    example = json.loads(EXAMPLES[0].read_text())
    bodies = [example | {"session_id": f"MEM-{k:02d}"} for k in range(12)]
    results = [r for _, r in service.import_records(store, iter(bodies), SETTINGS, actor="t",
                                                     jobs=2, batch=5)]
    assert [getattr(r, "status", r) for r in results] == ["created"] * 12
    assert len(store.list_records(limit=100).items) == 12
    store.close()


def _bytes(store: Store) -> Any:
    """Every row as the database holds it: SQLite's text dump (the JSON bytes themselves), or
    the rows of each table on PostgreSQL (``jsonb`` keeps no bytes to compare)."""
    if store.engine.dialect.name != "sqlite":
        return _rows(store)
    with store.engine.connect() as conn:
        return list(conn.connection.dbapi_connection.iterdump())  # type: ignore[union-attr]


def test_orjson_stores_the_bytes_the_stdlib_stored_on_each_database(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The import with ``jsonfast`` (resource bodies written by orjson with their hash text,
    handed to the store as ``JsonText``) and as before it (the stdlib; bodies as dicts that the
    JSON column encodes): the same answers and rows, on SQLite the same bytes."""
    stream = _stream()[::4]
    found = []
    for fast in (True, False):
        _empty(store)
        with monkeypatch.context() as patch:
            if not fast:
                patch.setattr(jsonfast, "_ENABLED", False)
                patch.setattr(extract, "JsonText", json.loads)  # the body stays a dict
            answers = [repr(r) for _, r in service.import_records(
                store, iter(stream), SETTINGS, actor="t", jobs=1, batch=10)]
        found.append((answers, _bytes(store)))
    assert any("fhir_token" in line for line in found[0][1]) or found[0][1]["fhir_token"]
    assert found[0] == found[1]


def _with_retractions() -> list[Any]:
    """``_stream`` and third versions of some sessions without their pain scores: their pain
    Observations are retracted (gone), the other resources stay."""
    stream = _stream()
    thirds = []
    for body in stream[:60:6]:
        third = json.loads(json.dumps(body)) | {"record_version": body["record_version"] + 2}
        third.pop("pain", None)
        thirds.append(third)
    return stream + thirds


@pytest.mark.parametrize(("fast", "max_in"), [(False, driver.MAX_IN), (True, driver.MAX_IN),
                                              (True, 3)], ids=["sqlalchemy", "driver", "both"])
@pytest.mark.parametrize("batch", [1, 25])
def test_the_driver_writes_on_sqlite_what_sqlalchemy_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool, max_in: int,
        batch: int) -> None:
    """``driver.FAST``: on SQLite the write path's statements, its locking reads and the new
    resources' keys go to the DBAPI connection (IN lists padded, ``driver.in_list``; past
    ``driver.MAX_IN`` values the SQLAlchemy path) — same answers, same database, byte for byte,
    as SQLAlchemy's execution of the same statements; new versions, amended and retracted
    Observations, repeats and a conflict included."""
    stream = _with_retractions()
    expected = tmp_path / f"expected-{batch}.db"
    dumps = []
    for path, on in ((expected, False), (tmp_path / "got.db", fast)):
        monkeypatch.setattr(driver, "FAST", on)
        monkeypatch.setattr(driver, "MAX_IN", max_in if on else driver.MAX_IN)
        store = Store(f"sqlite:///{path}", clock=FakeClock())
        store.migrate()
        answers = [repr(r) for _, r in service.import_records(
            store, iter(stream), SETTINGS, actor="t", jobs=1, batch=batch)]
        store.close()
        with sqlite3.connect(path) as db:
            dumps.append((answers, list(db.iterdump())))
            gone = db.execute("SELECT count(*) FROM fhir_resource WHERE gone").fetchone()[0]
        assert gone >= 10, gone
    assert dumps[0] == dumps[1]


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'e.db'}", clock=FakeClock())
    store.migrate()
    row = {"session_id": "E-1", "ts": None, "actor": None, "action": "save", "outcome": "x"}
    with pytest.raises(IntegrityError, match="NOT NULL"), store.write() as conn:
        driver.run(conn, insert(audit), [row])
    store.close()


@pytest.mark.integration
@pytest.mark.parametrize("batch", [1, 25])
def test_the_driver_writes_on_postgresql_what_sqlalchemy_writes(
        pg_store: Store, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    """``driver.FAST`` on PostgreSQL: the INSERTs as COPYs, the locking reads with one array
    per IN list (``= ANY``), the new resources' and outbox entries' keys from their sequences
    (``driver.new_keys``) — the same answers and every row the same, keys included, as
    SQLAlchemy's execution (multi-row INSERT … RETURNING, expanding IN lists); new versions,
    amended and retracted Observations, repeats and a conflict included."""
    stream = _with_retractions()
    found = []
    for on in (False, True):
        monkeypatch.setattr(driver, "FAST", on)
        _empty(pg_store)
        answers = [repr(r) for _, r in service.import_records(
            pg_store, iter(stream), SETTINGS, actor="t", jobs=1, batch=batch)]
        found.append((answers, _rows(pg_store)))
        with pg_store.read() as conn:
            gone = conn.execute(text("SELECT count(*) FROM fhir_resource WHERE gone")).scalar()
        assert gone >= 10, gone
    assert found[0][1]["fhir_token"] and found[0][1]["outbox"]
    assert found[0] == found[1]
