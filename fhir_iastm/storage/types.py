"""The plain values the store hands out and takes in: standard library only, so callers (service,
worker, api) can use these types without touching SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

#: ``sync_state.state`` values.
SYNC_STATES = ("queued", "pushing", "pushed", "unchanged", "superseded", "dead-letter",
               "resolved")
#: ``PushOutcome.status`` values that finish an outbox entry successfully.
SUCCESS_STATUSES = ("pushed", "unchanged", "superseded")
#: ``SaveResult.status`` -> HTTP status of ``POST /api/sessions`` (docs/decisions.md#d15).
SAVE_HTTP_STATUS = {"created": 201, "new-version": 201, "unchanged": 200}


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What ``Store.save_record`` did with one record (docs/decisions.md#d15)."""

    status: str  # created | new-version | unchanged
    session_id: str
    record_version: int
    record_hash: str
    outbox_id: int | None = None

    @property
    def http_status(self) -> int:
        """201 for created / new-version, 200 for unchanged."""
        return SAVE_HTTP_STATUS[self.status]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One stored version of a record: the JSON body exactly as accepted, and its bookkeeping."""

    session_id: str
    record_version: int
    record_hash: str
    body: dict[str, Any] = field(repr=False)  # PHI: never in a repr, hence never in a log
    received_at: datetime
    status: str
    current_version: int

    @property
    def is_current(self) -> bool:
        """True when this is the session's newest version."""
        return self.record_version == self.current_version


@dataclass(frozen=True, slots=True)
class Page:
    """A page of records and the cursor of the next page (None on the last page)."""

    items: list[StoredRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class LastPushed:
    """What the FHIR server last accepted for a session: the retraction diff's base
    (docs/decisions.md#d8)."""

    record_version: int
    record_hash: str
    identifiers: tuple[str, ...] = ()
    fhir_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SyncState:
    """Push state of one session, as ``GET /api/sessions/<id>/sync`` shows it."""

    session_id: str
    state: str
    current_version: int
    pushed_version: int | None
    pushed_hash: str | None
    identifiers: tuple[str, ...]
    fhir_ids: Mapping[str, str]
    attempts: int
    next_retry_at: datetime | None
    last_pushed_at: datetime | None
    last_error_code: str | None
    last_outcome: dict[str, Any] | None
    pending: int
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (date-times as ISO 8601 text)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            name, value = f.name, getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping) and name == "fhir_ids":
                value = dict(value)
            out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One claimed outbox entry: which version to push, and the lease that proves the claim.

    ``last_pushed`` is read in the claim's transaction; it cannot change while the lease holds
    (the session has no other entry in flight).
    """

    id: int
    session_id: str
    record_version: int
    record_hash: str
    body: dict[str, Any] = field(repr=False)  # PHI: never in a repr, hence never in a log
    attempts: int
    claimed_by: str
    claim_token: str
    claimed_until: datetime
    last_pushed: LastPushed | None = None


class OutcomeLike(Protocol):
    """What the store reads of a push result (the sync engine's ``PushOutcome``).

    ``status``: pushed | unchanged | superseded (success) or rejected (final failure, dead
    letter). ``identifiers``: the business identifiers (``system|value``) the pushed Bundle
    emitted, kept for the next version's retraction diff. ``operation_outcome``: the server's
    OperationOutcome.
    """

    @property
    def status(self) -> str: ...

    @property
    def identifiers(self) -> tuple[str, ...]: ...

    @property
    def fhir_ids(self) -> Mapping[str, str]: ...

    @property
    def operation_outcome(self) -> dict[str, Any] | None: ...

    @property
    def error_code(self) -> str | None: ...


__all__ = [
    "OutcomeLike",
    "SAVE_HTTP_STATUS",
    "SUCCESS_STATUSES",
    "SYNC_STATES",
    "LastPushed",
    "OutboxItem",
    "Page",
    "SaveResult",
    "StoredRecord",
    "SyncState",
]
