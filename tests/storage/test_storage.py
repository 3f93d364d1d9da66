"""Store: decision-15 re-POST semantics, version history, atomic outbox, queries, schema — on SQLite
and on the real PostgreSQL (the ``store`` fixture runs every test on both)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from fhir_iastm.errors import ConflictRecordError, NotFoundError
from fhir_iastm.records import record_hash
from fhir_iastm.storage import ResourceSet, Store
from fhir_iastm.storage import saving as saving_module
from fhir_iastm.storage.engine import current_revision, normalize_url
from fhir_iastm.storage.schema import audit, metadata, outbox, record_versions, records, sync_state

SID = "RBPT-2025-000311"


def count(store: Store, table) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


# (version, change to notes, last_modified / billing change, expected status | error code, http)
DECISION_15 = [
    pytest.param(1, None, False, "unchanged", 200, id="same-content-200"),
    pytest.param(1, None, "last_modified", "unchanged", 200, id="only-last_modified-200"),
    # billing is content (docs/decisions.md#hash-with-billing)
    pytest.param(1, None, "billing", "E_DUPLICATE_SESSION", 409, id="same-version-billing-409"),
    pytest.param(2, None, "billing", "new-version", 201, id="higher-version-billing-201"),
    pytest.param(2, "new text", False, "new-version", 201, id="higher-version-201"),
    pytest.param(3, None, False, "new-version", 201, id="higher-version-same-content-201"),
    pytest.param(1, "other text", False, "E_DUPLICATE_SESSION", 409, id="same-version-other-409"),
    pytest.param(0, None, False, "E_STALE_VERSION", 409, id="lower-version-409"),
]


@pytest.mark.parametrize(("version", "notes", "non_content", "expected", "http"), DECISION_15)
def test_decision_15(store, make_record, version, notes, non_content, expected, http) -> None:
    first = store.save_record(*make_record(SID, 1), actor="clinic-a")
    assert (first.status, first.http_status, first.outbox_id) == ("created", 201, 1)
    changes = {} if notes is None else {"notes": notes}
    if non_content == "last_modified":
        changes |= {"last_modified": "2025-03-05T10:00:00-06:00"}
    elif non_content == "billing":
        changes |= {"billing": {"cpt_lines": [{"code": "97140", "units": 3}]}}
    if version == 0:  # stale: store v2 first, then resend v1
        store.save_record(*make_record(SID, 2, notes="v2"), actor="clinic-a")
        version = 1
    record, raw = make_record(SID, version, **changes)
    if expected.startswith("E_"):
        with pytest.raises(ConflictRecordError) as err:
            store.save_record(record, raw, actor="clinic-a")
        assert err.value.http_status == http
        assert err.value.code == expected
        assert [i.details for i in err.value.issues] == [expected]
        return
    result = store.save_record(record, raw, actor="clinic-a")
    assert (result.status, result.http_status) == (expected, http)
    assert result.record_hash == record_hash(record)
    assert store.get_record(SID).record_version == version
    assert (result.outbox_id is None) == (expected == "unchanged")


def test_conflicts_change_nothing(store, make_record) -> None:
    store.save_record(*make_record(SID, 2), actor="a")
    before = (count(store, record_versions), count(store, outbox))
    for version, notes in ((2, "other"), (1, None)):
        with pytest.raises(ConflictRecordError):
            store.save_record(*make_record(SID, version, notes=notes), actor="a")
    assert (count(store, record_versions), count(store, outbox)) == before
    assert store.get_record(SID).body["notes"] == make_record(SID, 2)[1]["notes"]


def test_version_history_is_kept(store, make_record) -> None:
    for version in (1, 2, 5):
        store.save_record(*make_record(SID, version, notes=f"v{version}"), actor="a")
    assert store.list_versions(SID) == [1, 2, 5]
    assert store.get_record(SID, 2).body["notes"] == "v2"
    old = store.get_record(SID, 1)
    assert (old.record_version, old.current_version, old.is_current) == (1, 5, False)
    assert store.get_record(SID).is_current
    with pytest.raises(NotFoundError):
        store.get_record(SID, 3)
    with pytest.raises(NotFoundError):
        store.get_record("NOPE-1")


def test_each_accepted_version_enters_the_outbox_with_its_sync_state(store, make_record) -> None:
    store.save_record(*make_record(SID, 1), actor="a")
    store.save_record(*make_record(SID, 1), actor="a")  # unchanged: no new entry
    store.save_record(*make_record(SID, 2, notes="x"), actor="a")
    with store.read() as conn:
        rows = conn.execute(select(outbox.c.session_id, outbox.c.record_version)).all()
    assert sorted(rows) == [(SID, 1), (SID, 2)]
    sync = store.get_sync(SID)
    assert (sync.state, sync.current_version, sync.pending, sync.pushed_version) == (
        "queued",
        2,
        2,
        None,
    )
    assert store.last_pushed(SID) is None


@pytest.mark.parametrize("resources", [None, ResourceSet("k", ())])
def test_failure_after_insert_stores_nothing(store, make_record, monkeypatch, resources) -> None:
    """Record, version, outbox entry, sync state and resources are one transaction: all or
    nothing (the resources are written last, after every other row of the record)."""
    target, failing_step = saving_module, "write_many"
    real = getattr(target, failing_step)

    def boom(*args, **kwargs):
        real(*args, **kwargs)  # the row IS written inside the transaction ...
        raise RuntimeError("disk full")  # ... and then the transaction fails

    monkeypatch.setattr(target, failing_step, boom)
    with pytest.raises(RuntimeError):
        store.save_record(*make_record(SID, 1), actor="a", resources=resources)
    for table in (records, record_versions, outbox, sync_state, audit):
        assert count(store, table) == 0, table.name
    monkeypatch.setattr(target, failing_step, real)
    assert store.save_record(*make_record(SID, 1), actor="a").status == "created"


def test_unique_session_version_constraint(store, make_record) -> None:
    """Even bypassing docs/decisions.md#d15, the database refuses two contents under one version."""
    from sqlalchemy.exc import IntegrityError

    store.save_record(*make_record(SID, 1), actor="a")
    with pytest.raises(IntegrityError), store.write() as conn:
        conn.execute(
            record_versions.insert().values(
                session_id=SID,
                record_version=1,
                record_hash="x" * 64,
                body={},
                received_at=store.clock(),
            )
        )


def test_list_records_filters_and_pages(store, make_record, clock) -> None:
    for i in range(7):
        patient = dict(make_record()[1]["patient"], mrn="MRN-A" if i % 2 else "MRN-B")
        store.save_record(*make_record(f"S-{i:03d}", 1, patient=patient), actor="a")
        clock.advance(60)
    assert [r.session_id for r in store.list_records(patient="MRN-A").items] == [
        "S-001",
        "S-003",
        "S-005",
    ]
    since = clock.now - timedelta(seconds=150)
    assert [r.session_id for r in store.list_records(since=since).items] == ["S-005", "S-006"]
    assert len(store.list_records(status="completed").items) == 7
    assert store.list_records(status="cancelled").items == []
    assert len(store.list_records(sync="queued").items) == 7
    assert store.list_records(sync="pushed").items == []
    seen, cursor = [], None
    while True:
        page = store.list_records(limit=3, cursor=cursor)
        seen += [r.session_id for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"S-{i:03d}" for i in range(7)]
    assert [r.session_id for r in store.iter_records(batch=2)] == seen
    assert [r.session_id for r in store.list_records(limit=2, offset=5).items] == ["S-005", "S-006"]


def test_audit_rows_carry_no_phi(store, make_record) -> None:
    record, raw = make_record(SID, 1)
    store.save_record(record, raw, actor="clinic-token-name")
    store.enqueue(SID, actor="ops")
    rows = store.audit_log()
    assert [(r["action"], r["actor"], r["outcome"]) for r in rows] == [
        ("enqueue", "ops", None),
        ("save", "clinic-token-name", "created"),
    ]
    text = repr(rows)
    for phi in (record.patient.mrn, record.patient.family_name, record.patient.birth_date):
        assert phi not in text


def test_enqueue_reuses_pending_entry_and_requeues_finished_sessions(store, make_record) -> None:
    store.save_record(*make_record(SID, 1), actor="a")
    assert store.enqueue(SID) == 1  # the pending entry is made due now, not duplicated
    assert count(store, outbox) == 1
    from fhir_iastm.sync.outcome import PushOutcome

    store.complete(store.claim("w"), PushOutcome("pushed", "S-1", 1))
    assert store.enqueue(SID) == 2
    assert store.get_sync(SID).state == "queued"
    with pytest.raises(NotFoundError):
        store.enqueue("NOPE-1")


def test_migrations_match_the_schema_module(store) -> None:
    assert current_revision(store.engine) == head_revision()
    store.migrate()  # idempotent
    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    assert diff == []


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    from fhir_iastm.storage.engine import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_racing_first_saves_store_one_content(store, make_record) -> None:
    """8 threads POST version 1 of one session with different contents: one wins, 7 get 409."""
    from concurrent.futures import ThreadPoolExecutor

    def save(i: int) -> str:
        try:
            return store.save_record(*make_record(SID, 1, notes=f"writer {i}"), actor="a").status
        except ConflictRecordError as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        results = sorted(pool.map(save, range(8)))
    assert results == ["E_DUPLICATE_SESSION"] * 7 + ["created"]
    assert (count(store, record_versions), count(store, outbox)) == (1, 1)


def test_long_actor_names_are_cut_to_the_column(store, make_record) -> None:
    store.save_record(*make_record(SID, 1), actor="n" * 100)
    assert store.audit_log()[0]["actor"] == "n" * 64


def test_reprs_carry_no_phi(store, make_record) -> None:
    record, raw = make_record(SID, 1)
    store.save_record(record, raw, actor="a")
    shown = repr(store.get_record(SID)) + repr(store.claim("w"))
    for phi in (record.patient.mrn, record.patient.family_name, record.patient.birth_date):
        assert phi not in shown
    assert SID in shown


def test_migrations_downgrade_and_upgrade_again(tmp_path) -> None:
    from alembic import command

    from fhir_iastm.storage.engine import alembic_config

    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    store.migrate()
    cfg = alembic_config()
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        conn.commit()
    assert current_revision(store.engine) is None
    store.migrate()
    assert current_revision(store.engine) == head_revision()
