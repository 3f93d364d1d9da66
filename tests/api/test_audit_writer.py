"""The AuditEvent writer thread (docs/audit.md#writing-without-slowing-reads): events submitted
within its linger are stored in one transaction, a flush stores at once, and every event is
stored exactly once (a real SQLite store)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from fhir_iastm.api.audit import AuditWriter
from fhir_iastm.facade.audit import Access, audit_row
from fhir_iastm.storage import AuditRow, AuditStore, Store


class _Counting(AuditStore):
    """The real AuditStore, counting its transactions."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.batches: list[int] = []

    def add(self, rows: Sequence[AuditRow]) -> None:
        self.batches.append(len(rows))
        super().add(rows)


def _row() -> AuditRow:
    access = Access("search-type", 200, "open", patients=("Patient/p-1",),
                    query="Procedure?patient")
    return audit_row(access, uuid.uuid4().hex, datetime.now(UTC), "http://x/fhir")


def _queued(store: Store, count: int, *, linger: float, batch: int = 500) -> tuple[
        _Counting, AuditWriter, list[AuditRow]]:
    """A writer on the real store with ``count`` events submitted."""
    audit = _Counting(store)
    writer = AuditWriter(audit, batch=batch, linger=linger)
    rows = [_row() for _ in range(count)]
    for row in rows:
        writer.submit(row)
    return audit, writer, rows


def test_events_within_the_linger_share_a_transaction(sqlite_store: Store) -> None:
    audit, writer, rows = _queued(sqlite_store, 20, linger=0.5)
    assert writer.flush()
    assert sum(audit.batches) == 20
    assert len(audit.batches) <= 2
    assert all(audit.read(r.id) is not None for r in rows)
    writer.close()


def test_a_flush_does_not_wait_for_the_linger(sqlite_store: Store) -> None:
    audit, writer, (row,) = _queued(sqlite_store, 1, linger=30.0)
    assert writer.flush(timeout=10.0)  # False had it waited for the 30 s linger
    assert audit.batches == [1]
    assert audit.read(row.id) is not None
    writer.close()


def test_a_full_batch_is_stored_without_lingering(sqlite_store: Store) -> None:
    audit, writer, _ = _queued(sqlite_store, 5, batch=5, linger=30.0)
    deadline = time.monotonic() + 10.0
    while not audit.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert audit.batches == [5]
    writer.close()


def test_close_stores_what_is_queued(sqlite_store: Store) -> None:
    audit, writer, rows = _queued(sqlite_store, 3, linger=30.0)
    writer.close()
    assert sum(audit.batches) == 3
    assert all(audit.read(r.id) is not None for r in rows)
