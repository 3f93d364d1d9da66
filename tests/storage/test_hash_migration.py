"""Migration 0009 (docs/decisions.md#hash-with-billing): the record hash counts ``billing``; a
store whose hashes were written without it is rehashed, so re-posting or re-importing an
unchanged record stays "unchanged" and queues no push — on SQLite and PostgreSQL."""

from __future__ import annotations

import copy

from sqlalchemy import select, update

from fhir_iastm import service
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.records import load_record, record_hash
from fhir_iastm.storage import Store
from fhir_iastm.storage.engine import current_revision
from fhir_iastm.storage.schema import outbox, record_versions, records, sync_state
from tests.conftest_storage import downgrade_to, sample_raw

SID = "RBPT-2025-000311"


def _hashes(store: Store) -> tuple[list[str], list[str], list[str | None]]:
    with store.read() as conn:
        return (
            list(conn.execute(select(records.c.record_hash)
                              .order_by(records.c.session_id)).scalars()),
            list(conn.execute(select(record_versions.c.record_hash)
                              .order_by(record_versions.c.id)).scalars()),
            list(conn.execute(select(sync_state.c.pushed_hash)
                              .order_by(sync_state.c.session_id)).scalars()),
        )


def _outbox_rows(store: Store) -> int:
    with store.read() as conn:
        return len(conn.execute(select(outbox.c.id)).all())


def test_the_hash_counts_billing() -> None:
    raw = sample_raw(SID, 1)
    assert raw["billing"]["cpt_lines"]
    other = copy.deepcopy(raw)
    other["billing"]["cpt_lines"][0]["units"] += 1
    assert record_hash(load_record(raw)) != record_hash(load_record(other))
    # the old scheme left billing out; a record without billing hashes as before
    assert record_hash(load_record(raw), legacy=True) == record_hash(load_record(other),
                                                                     legacy=True)
    plain = {k: v for k, v in raw.items() if k != "billing"}
    assert record_hash(load_record(plain)) == record_hash(load_record(plain), legacy=True)


def test_a_store_hashed_without_billing_is_rehashed_and_repeats_stay_unchanged(store) -> None:
    settings = MappingSettings()
    raw, plain = sample_raw(SID, 1), sample_raw("RBPT-2025-000312", 1)
    del plain["billing"]
    downgrade_to(store, "0008")
    for body in (raw, plain):  # written as a store before 0009 wrote them
        record = load_record(body)
        store.save_record(record, body, actor="a", digest=record_hash(record, legacy=True))
    with store.engine.begin() as conn:  # and pushed
        conn.execute(update(sync_state).where(sync_state.c.session_id == SID)
                     .values(pushed_version=1, pushed_hash=record_hash(load_record(raw),
                                                                       legacy=True)))
    legacy = _hashes(store)
    store.migrate()
    assert (current_revision(store.engine) or "") >= "0009"
    new, unbilled = record_hash(load_record(raw)), record_hash(load_record(plain))
    assert _hashes(store) == ([new, unbilled], [new, unbilled], [new, None])
    assert legacy[0][0] != new
    assert legacy[0][1] == unbilled
    queued = _outbox_rows(store)
    for body in (raw, plain):  # re-POST / re-import of the unchanged records
        assert service.save_record(store, body, settings, actor="a").result.status == "unchanged"
    [(_, imported)] = list(service.import_records(store, [raw], settings, actor="a"))
    assert not isinstance(imported, Exception)
    assert imported.status == "unchanged"
    assert _outbox_rows(store) == queued
    # a billing-only change is content now: a new version, queued for its push
    billed = copy.deepcopy(raw) | {"record_version": 2}
    billed["billing"]["cpt_lines"][0]["units"] += 1
    assert service.save_record(store, billed, settings, actor="a").result.status == "new-version"
    assert _outbox_rows(store) == queued + 1
    downgrade_to(store, "0008")  # and back: the old scheme's hashes again
    assert _hashes(store)[1][:2] == legacy[1]
    store.migrate()
