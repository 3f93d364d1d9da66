"""Group commit: records saved at the same time by the threads of one process share a transaction
(docs/performance.md#group-commit).

The first thread to save becomes the leader: it takes the write lock, then every save waiting by
then (up to ``limit``; same actor; one version per session, a second one waits for the next
transaction) and stores them with ``save_batch``, each decided exactly as if alone
(``storage.saving``). The others wait for their own outcome; when the leader is done, the oldest
waiting save leads the next transaction. Alone, a save is a transaction of one, as before. If a
transaction of several fails, each of its records is saved again in a transaction of its own, so
one record's failure is never another's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from fhir_iastm.errors import ConflictRecordError
from fhir_iastm.storage.saving import RecordWrite
from fhir_iastm.storage.types import SaveResult

Outcome = SaveResult | ConflictRecordError
#: Stores records in the open transaction (``storage.saving.save_batch`` with the store's clock).
SaveMany = Callable[[Connection, list[RecordWrite], str | None], list[Outcome]]
#: Stores one record in a transaction of its own (retrying a lost race), raising its 409.
SaveAlone = Callable[[RecordWrite, str | None], SaveResult]


@dataclass(eq=False)
class _Slot:
    item: RecordWrite
    actor: str | None
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    outcome: Outcome | None = None
    error: BaseException | None = None


class GroupCommit:
    """The saves of one ``Store`` in one process."""

    def __init__(self, write: Callable[[], AbstractContextManager[Connection]],
                 save_many: SaveMany, save_alone: SaveAlone, limit: int = 32) -> None:
        self._write, self._save_many, self._save_alone = write, save_many, save_alone
        self.limit = limit
        self._mutex = threading.Lock()
        self._waiting: list[_Slot] = []
        self._leading = False

    @property
    def waiting(self) -> int:
        """How many saves wait for a transaction (the leader's own is not counted once taken)."""
        with self._mutex:
            return len(self._waiting)

    def save(self, item: RecordWrite, actor: str | None) -> SaveResult:
        """Store ``item`` (in a shared transaction when others are saving); raises its 409."""
        slot = _Slot(item, actor)
        with self._mutex:
            self._waiting.append(slot)
            lead, self._leading = not self._leading, True
        if not lead:
            slot.done.wait()
        if lead or slot.lead:
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        if isinstance(slot.outcome, ConflictRecordError):
            raise slot.outcome
        assert slot.outcome is not None
        return slot.outcome

    def _take(self, own: _Slot) -> list[_Slot]:
        """``own`` and the saves that can share its transaction, out of the waiting list."""
        with self._mutex:
            batch, sessions, rest = [own], {own.item[0].session_id}, []
            for slot in self._waiting:
                sid = slot.item[0].session_id
                if slot is own:
                    continue
                if len(batch) < self.limit and slot.actor == own.actor and sid not in sessions:
                    batch.append(slot)
                    sessions.add(sid)
                else:
                    rest.append(slot)
            self._waiting = rest
            return batch

    def _lead(self, own: _Slot) -> None:
        batch: list[_Slot] = []
        try:
            try:
                with self._write() as conn:
                    batch = self._take(own)
                    outcomes = self._save_many(conn, [s.item for s in batch], own.actor)
            except Exception as exc:
                if not batch:  # the write lock could not be had: this save fails alone
                    batch = [own]
                    self._forget(own)
                    own.error = exc
                elif len(batch) == 1 and not isinstance(exc, IntegrityError):
                    own.error = exc
                else:
                    self._one_by_one(batch)
            else:
                for slot, outcome in zip(batch, outcomes, strict=True):
                    slot.outcome = outcome
        finally:
            self._hand_over(batch)

    def _one_by_one(self, batch: list[_Slot]) -> None:
        for slot in batch:
            try:
                slot.outcome = self._save_alone(slot.item, slot.actor)
            except Exception as exc:  # noqa: BLE001 — this record's own failure, answered to it
                slot.error = exc

    def _forget(self, own: _Slot) -> None:
        with self._mutex:
            self._waiting = [s for s in self._waiting if s is not own]

    def _hand_over(self, batch: list[_Slot]) -> None:
        """Wake the batch with its outcomes and pass the lead to the oldest waiting save."""
        for slot in batch:
            if slot.outcome is None and slot.error is None:
                slot.error = RuntimeError("the transaction storing this record was interrupted")
        with self._mutex:
            for slot in batch:
                slot.lead = False
                slot.done.set()
            if self._waiting:
                self._waiting[0].lead = True
                self._waiting[0].done.set()
            else:
                self._leading = False


__all__ = ["GroupCommit"]
