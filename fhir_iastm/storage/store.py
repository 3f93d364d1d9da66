"""``Store`` — records with their version history, sync state, outbox and audit.

One code path for SQLite and
PostgreSQL. Saving a record (docs/decisions.md#d15) writes the version, the sync state, the outbox
entry and the audit row in ONE transaction: no record is accepted without being queued for push.
The outbox half (claim / complete / retry / dead letter) is in ``storage.outbox``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from fhir_iastm.errors import ConflictRecordError, NotFoundError
from fhir_iastm.storage import fhir_search as fs
from fhir_iastm.storage import outbox as ob
from fhir_iastm.storage import queries as q
from fhir_iastm.storage.checkpoint import Checkpointer
from fhir_iastm.storage.engine import READ_ONLY, is_memory, make_engine, migrate
from fhir_iastm.storage.fhir_types import (
    JsonText,
    ResourceSet,
    SearchQuery,
    SearchResult,
    StoredResource,
)
from fhir_iastm.storage.fhir_write import bound_text, write_many
from fhir_iastm.storage.group import GroupCommit
from fhir_iastm.storage.saving import RecordWrite, save_batch
from fhir_iastm.storage.schema import audit, record_versions
from fhir_iastm.storage.types import (
    LastPushed,
    OutboxItem,
    OutcomeLike,
    Page,
    SaveResult,
    StoredRecord,
    SyncState,
)
from fhir_iastm.storage.writelock import WriteLock, hold_postgresql_writers, lock_path

if TYPE_CHECKING:
    from fhir_iastm.records.model import SessionRecord

DEFAULT_URL = "sqlite:///fhir_iastm.db"
Clock = Callable[[], datetime]
Hasher = Callable[["SessionRecord"], str]
#: A record version's resources waiting for ``write_many``: (session id, resources, now).
_ResourceWrite = tuple[str, ResourceSet, str]


def utc_now() -> datetime:
    """The real clock (aware, UTC)."""
    return datetime.now(UTC)


def _default_hasher(record: SessionRecord) -> str:
    # the core's canonical (JCS) hash, docs/decisions.md#d7
    from fhir_iastm.records import record_hash

    return record_hash(record)


class Store:
    """The durable store. ``Store(url)`` then ``migrate()`` once (idempotent) before use."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        clock: Clock = utc_now,
        hasher: Hasher | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.engine = engine if engine is not None else make_engine(url)
        self.clock = clock
        self.hasher: Hasher = hasher or _default_hasher
        #: run by close() before the pool goes (the audit writer drains its queue)
        self.closing: list[Callable[[], object]] = []
        url_ = self.engine.url
        #: SQLite: one writer at a time, handed over at once (``storage.writelock``)
        self.write_lock = (WriteLock(lock_path(url_.database))
                           if url_.get_backend_name() == "sqlite" else None)
        #: SQLite file: the WAL checkpointed by a thread, and rewound under the write lock
        self.checkpointer = (Checkpointer(self.engine, self.write_lock.held)
                             if self.write_lock is not None and self.write_lock.path else None)
        self._group = GroupCommit(self.write, self._save_many, self._save_alone)

    # -- plumbing -------------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, one at a time (``storage.writelock``: on SQLite BEGIN
        IMMEDIATE under the store's write lock; on PostgreSQL the writers' advisory lock)."""
        if self.write_lock is None:
            with self.engine.begin() as conn:
                hold_postgresql_writers(conn)
                yield conn
            return
        with self.write_lock.held(), self.engine.begin() as conn:
            yield conn
        if self.checkpointer is not None:
            self.checkpointer.wrote()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction."""
        with self.engine.connect().execution_options(**READ_ONLY) as conn, conn.begin():
            yield conn

    def migrate(self) -> None:
        """Create or upgrade the schema (``alembic upgrade head``)."""
        migrate(self.engine)

    def forks_share_database(self) -> bool:
        """Whether a forked process writing through this store writes the same database (an
        in-memory SQLite database would be the fork's own copy)."""
        return not is_memory(self.engine.url)

    def after_fork(self) -> None:
        """In a forked child: its own connections from now on (the parent's stay the parent's)."""
        self.engine.dispose(close=False)

    def close(self) -> None:
        """Run the ``closing`` hooks, then release the connection pool."""
        for hook in self.closing:
            hook()
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()

    # -- records --------------------------------------------------------------------------------
    def save_record(
        self,
        record: SessionRecord,
        raw: dict[str, Any] | JsonText,
        *,
        actor: str | None,
        resources: ResourceSet | None = None,
        digest: str | None = None,
    ) -> SaveResult:
        """Store a record by docs/decisions.md#d15 and queue its push, atomically; 409
        conflicts raise.

        ``resources``: the record's FHIR resources and index rows, written in the same
        transaction (without them the record waits for ``index_store``). ``digest``: the
        record's hash when the caller already computed it. Saves made at the same time by
        this process's threads share one transaction (``storage.group``), each decided as if
        alone."""
        item = (record, raw, resources, digest or self.hasher(record))
        return self._group.save(item, actor)

    def _save_many(self, conn: Connection, items: list[RecordWrite], actor: str | None
                   ) -> list[SaveResult | ConflictRecordError]:
        return save_batch(conn, items, actor, self.clock)

    def _save_alone(self, item: RecordWrite, actor: str | None) -> SaveResult:
        """One record in a transaction of its own; 409 conflicts raise."""
        for attempt in range(3):
            try:
                with self.write() as conn:
                    (result,) = save_batch(conn, [item], actor, self.clock)
                if isinstance(result, ConflictRecordError):
                    raise result
                return result
            except IntegrityError:
                # Two first POSTs of one session raced: the loser retries and now sees the winner.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def save_records(
        self, items: Sequence[RecordWrite], *, actor: str | None
    ) -> list[SaveResult | ConflictRecordError]:
        """Store several records (``fhir-iastm import``) in ONE transaction, in order, each
        exactly as ``save_record`` would (``storage.saving``): a record refused by a 409 (its
        conflict is found before it writes anything) is answered with its error and the others
        are stored. Any database error rolls the batch back and the records are stored one
        transaction each instead."""
        try:
            with self.write() as conn:
                return save_batch(conn, items, actor, self.clock)
        except IntegrityError:  # a concurrent first save of one of these sessions
            out: list[SaveResult | ConflictRecordError] = []
            for item in items:
                try:
                    out.append(self._save_alone(item, actor))
                except ConflictRecordError as exc:
                    out.append(exc)
            return out

    def get_record(self, session_id: str, version: int | None = None) -> StoredRecord:
        """The current (or a given) version of a record; NotFoundError when absent."""
        with self.read() as conn:
            found = q.select_records(conn, session_id=session_id, version=version)
        if not found:
            what = f"version {version} of session" if version is not None else "session"
            raise NotFoundError(f"no {what} {session_id}")
        return found[0]

    def list_versions(self, session_id: str) -> list[int]:
        """Every stored record_version of a session, ascending."""
        with self.read() as conn:
            rows = conn.execute(
                select(record_versions.c.record_version)
                .where(record_versions.c.session_id == session_id)
                .order_by(record_versions.c.record_version)
            ).scalars()
            return list(rows)

    def earlier_versions(self, wanted: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
        """The bodies of the stored versions of each session below the version ``wanted`` gives
        it, ascending (one query for many sessions; a session without any is left out)."""
        with self.read() as conn:
            return q.select_earlier(conn, wanted)

    def list_records(
        self,
        *,
        patient: str | None = None,
        since: datetime | None = None,
        status: str | None = None,
        sync: str | None = None,
        limit: int = 50,
        offset: int = 0,
        cursor: str | None = None,
    ) -> Page:
        """Current versions by session_id; filter by patient MRN, updated since, status, sync."""
        limit = max(1, min(limit, 1000))
        with self.read() as conn:
            items = q.select_records(
                conn,
                patient=patient,
                since=since,
                status=status,
                sync=sync,
                limit=limit + 1,
                offset=offset,
                after=cursor,
            )
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].session_id if more and items else None)

    def iter_records(self, batch: int = 500) -> Iterator[StoredRecord]:
        """Every current record, in session_id order, read in keyset pages (for export)."""
        cursor: str | None = None
        while True:
            page = self.list_records(limit=batch, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- FHIR resources (the facade) -------------------------------------------------------------
    def read_resource(
        self, resource_type: str, resource_id: str, version: int | None = None
    ) -> StoredResource | None:
        """The current state (or one version) of a FHIR resource; None when unknown."""
        with self.read() as conn:
            return fs.read_resource(conn, resource_type, resource_id, version)

    def resource_history(
        self, resource_type: str, resource_id: str, limit: int = 100, before: int | None = None
    ) -> list[StoredResource]:
        """A resource's versions, newest first."""
        with self.read() as conn:
            return fs.resource_history(conn, resource_type, resource_id, limit, before)

    def search(self, query: SearchQuery) -> SearchResult:
        """One page of a FHIR search (in one read transaction: page, includes and total agree)."""
        with self.read() as conn:
            return fs.search(conn, query)

    def records_to_index(self, *, everything: bool = False, batch: int = 200
                         ) -> Iterator[StoredRecord]:
        """Current records whose resources are not (``everything``: or are) indexed, in pages."""
        cursor = ""
        while True:
            with self.read() as conn:
                items = q.select_unindexed(conn, cursor, batch, everything=everything)
            yield from items
            if len(items) < batch:
                return
            cursor = items[-1].session_id

    def write_index(self, items: list[tuple[StoredRecord, ResourceSet]]) -> None:
        """Write the resources of stored record versions (``init-db`` back-fill, ``reindex``);
        a record changed meanwhile is skipped (its own save indexed it)."""
        with self.write() as conn:
            now = bound_text(self.clock())
            pending: list[_ResourceWrite] = []
            for stored, resources in items:
                current = q.lock_record(conn, stored.session_id)
                if current is None or current.record_version != stored.record_version:
                    continue
                pending.append((stored.session_id, resources, now))
                q.set_indexed(conn, stored.session_id, stored.record_version)
            write_many(conn, pending)

    def count_unindexed(self) -> int:
        """How many current records have no resources in the facade yet."""
        with self.read() as conn:
            return q.count_unindexed(conn)

    # -- sync state and audit -------------------------------------------------------------------
    def get_sync(self, session_id: str) -> SyncState:
        """Push state of a session (``/api/sessions/<id>/sync``); NotFoundError when absent."""
        with self.read() as conn:
            state = q.select_sync(conn, session_id)
        if state is None:
            raise NotFoundError(f"no session {session_id}")
        return state

    def last_pushed(self, session_id: str) -> LastPushed | None:
        """Version, hash and identifiers the server last accepted; None if never pushed."""
        with self.read() as conn:
            return q.select_last_pushed(conn, session_id)

    def audit(
        self,
        actor: str | None,
        action: str,
        session_id: str | None = None,
        outcome: str | None = None,
    ) -> None:
        """Append an audit row: who (token name, never the token) did what to which session."""
        with self.write() as conn:
            q.add_audit(conn, self.clock(), actor, action, session_id, outcome)

    def audit_log(self, session_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest audit rows first (optionally of one session)."""
        stmt = select(audit).order_by(audit.c.id.desc()).limit(limit)
        if session_id is not None:
            stmt = stmt.where(audit.c.session_id == session_id)
        with self.read() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    # -- outbox ---------------------------------------------------------------------------------
    def enqueue(self, session_id: str, *, actor: str | None = None) -> int:
        """Queue the current version for push now (reuses a pending entry); returns the entry id."""
        with self.write() as conn:
            current = q.lock_record(conn, session_id)
            if current is None:
                raise NotFoundError(f"no session {session_id}")
            now = self.clock()
            entry = ob.request_push(conn, session_id, current.record_version, now)
            q.set_queued(conn, session_id, now, created=False)
            q.add_audit(conn, now, actor, "enqueue", session_id, None)
            return entry

    def claim(self, worker_id: str, lease_seconds: float = 60.0) -> OutboxItem | None:
        """Lease the next pushable entry (the oldest pending version of a session not in flight)."""
        with self.write() as conn:
            return ob.claim(conn, worker_id, lease_seconds, self.clock())

    def complete(self, item: OutboxItem, outcome: OutcomeLike) -> None:
        """Finish an entry whose push succeeded (pushed / unchanged / superseded)."""
        with self.write() as conn:
            ob.complete(conn, item, outcome, self.clock())

    def retry_later(self, item: OutboxItem, delay: float, outcome: OutcomeLike, *,
                    count_attempt: bool = True) -> None:
        """Release an entry after a transient failure; it becomes claimable after ``delay`` s
        (``count_attempt=False``: the attempt is given back, the target was down)."""
        with self.write() as conn:
            ob.retry_later(conn, item, delay, outcome, self.clock(), count_attempt=count_attempt)

    def dead_letter(self, item: OutboxItem, outcome: OutcomeLike) -> None:
        """Finish an entry whose push was finally rejected; keep the OperationOutcome."""
        with self.write() as conn:
            ob.dead_letter(conn, item, outcome, self.clock())

    def extend_lease(self, item: OutboxItem, lease_seconds: float) -> OutboxItem:
        """Keep a long push's claim alive; LeaseLostError if it already expired and moved on."""
        with self.write() as conn:
            return ob.extend_lease(conn, item, lease_seconds, self.clock())

    def prune_outbox(self, before: datetime) -> int:
        """Delete finished entries (done or dead-lettered) older than ``before``; returns the count.

        Sync state and version history keep what was pushed, so finished entries are only a log.
        """
        with self.write() as conn:
            return ob.prune(conn, before)

    def outbox_counts(self) -> dict[str, int]:
        """Entries by state: pending, in_flight, done, dead-letter (for health and tests)."""
        with self.read() as conn:
            return q.outbox_counts(conn, self.clock())

    def bind_canonical_base(self, base: str, *, allow_change: bool = False) -> str | None:
        """Record the canonical base the store pushes under (docs/canonical-base.md).

        Returns the base already recorded when sessions were pushed under it and it differs from
        ``base`` (nothing changes then); ``allow_change`` records ``base`` instead (audited).
        """
        try:
            with self.write() as conn:
                return q.bind_canonical_base(conn, base, allow_change, self.clock())
        except IntegrityError:  # PostgreSQL: another worker recorded the first base meanwhile
            with self.write() as conn:
                return q.bind_canonical_base(conn, base, allow_change, self.clock())

    def sync_counts(self) -> dict[str, int]:
        """Sessions by sync state."""
        with self.read() as conn:
            return q.sync_counts(conn)


__all__ = ["DEFAULT_URL", "RecordWrite", "Store", "utc_now"]
