"""Prepare record bodies for the store and import many (``fhir-iastm import``).

* :func:`prepare_record` — validate, hash and map one body to what the store writes (CPU only).
* :func:`amended_write` / :func:`amended_resources` — the ``amended`` rule against the versions
  the store holds (docs/clinical.md#amended): the one rule of the save, the import and the
  reindex.
* :func:`import_records` — bodies stored in order, each exactly as ``service.save_record``
  would; with ``jobs`` > 1 ONE pool of worker processes for the whole run, fed a bounded window
  of batches (the input streams, memory stays bounded), prepares AND stores them: each worker
  prepares its batch while another writes, and writes it in its turn (:class:`Turns`: batch k
  commits after batch k-1), so no prepared record crosses a process boundary and both cores
  work. The first body is prepared here before the pool forks, so the workers inherit the
  core's code tables instead of each building them.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from itertools import chain, islice
from multiprocessing import get_context
from multiprocessing.synchronize import Condition
from typing import Any

from fhir_iastm.errors import InvalidRecordError, Issue
from fhir_iastm.facade import resource_set
from fhir_iastm.mapping.amend import amended_identifiers
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records import check_record, record_hash
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import ResourceSet, SaveResult, Store
from fhir_iastm.storage.store import RecordWrite

Prepared = RecordWrite | InvalidRecordError
#: Batches in flight per worker process.
_WINDOW_PER_JOB = 2
#: The worker processes' collector thresholds (the default is 700, 10, 10).
_GC_THRESHOLDS = (50_000, 20, 100)
#: The import's pool forks: its workers inherit the store, the settings and the warm caches.
_FORK = get_context("fork")


def amended_write(store: Store, write: RecordWrite, settings: MappingSettings) -> RecordWrite:
    """``write`` with :func:`amended_resources` (the single save)."""
    return _amended_writes(store, [write], settings)[0]


def amended_resources(
    store: Store, record: SessionRecord, resources: ResourceSet, digest: str,
    settings: MappingSettings,
) -> ResourceSet:
    """``resources`` mapped again when a version the store holds below ``record`` had another
    value for one of its Observations: those are stored ``amended``, as a push sends them
    (docs/clinical.md#amended). The one rule of the save, the import and the reindex."""
    if record.record_version == 1:
        return resources
    earlier = store.earlier_versions({record.session_id: record.record_version})
    return _amended(record, resources, digest, settings, earlier.get(record.session_id, []))


def _amended(
    record: SessionRecord, resources: ResourceSet, digest: str, settings: MappingSettings,
    earlier: list[dict[str, Any]],
) -> ResourceSet:
    """:func:`amended_resources` with the bodies of the earlier versions already read."""
    if not earlier:
        return resources
    with_hash = replace(settings, record_hash=digest)
    amended = amended_identifiers(record, (from_dict(SessionRecord, b) for b in earlier),
                                  with_hash)
    return resource_set(record, with_hash, amended) if amended else resources


def _amended_writes(store: Store, writes: Sequence[RecordWrite], settings: MappingSettings
                    ) -> list[RecordWrite]:
    """Every write with :func:`amended_resources`, the earlier versions of all of them read in
    one query (``writes`` holds one version per session: see :func:`_one_version_each`)."""
    wanted = {w[0].session_id: w[0].record_version for w in writes
              if w[2] is not None and w[0].record_version > 1}
    earlier = store.earlier_versions(wanted) if wanted else {}
    out: list[RecordWrite] = []
    for record, body, resources, digest in writes:
        found = earlier.get(record.session_id)
        if found and resources is not None:
            resources = _amended(record, resources, digest, settings, found)
        out.append((record, body, resources, digest))
    return out


def prepare(body: Any, settings: MappingSettings) -> tuple[Prepared, list[Issue]]:
    """A record body validated, hashed and mapped to its resources (what the store writes), or
    the error naming every problem; and its warnings. CPU only: no I/O."""
    record, issues = check_record(body)
    warnings = [i for i in issues if not i.is_error]
    if record is None:
        return InvalidRecordError("invalid session record",
                                  [i for i in issues if i.is_error]), warnings
    digest = record_hash(record)
    return (record, body, resource_set(record, replace(settings, record_hash=digest)),
            digest), warnings


def prepare_record(body: Any, settings: MappingSettings) -> Prepared:
    """What ``Store.save_records`` stores for one record body, or the error refusing it (the
    import runs this in worker processes)."""
    return prepare(body, settings)[0]


def import_records(
    store: Store,
    bodies: Iterable[Any],
    settings: MappingSettings,
    *,
    actor: str | None,
    jobs: int = 1,
    batch: int = 100,
) -> Iterator[tuple[Any, SaveResult | InvalidRecordError]]:
    """Store record bodies in order, each exactly as ``service.save_record`` would, yielding
    each with its result or error (``fhir-iastm import``; a ``ConflictRecordError`` is an
    ``InvalidRecordError``). ``bodies`` is read as it is needed. ``jobs`` > 1: that many worker
    processes validate, map and store the batches, in order (one process for an in-memory
    SQLite store, which a fork cannot share); ``batch`` records share a transaction, in which
    each record is still stored whole or not at all (``Store.save_records``)."""
    stream = iter(bodies)
    head = list(islice(stream, batch + 1))
    if jobs > 1 and len(head) > batch and store.forks_share_database():
        yield from _in_workers(store, chain(head, stream), settings, actor, jobs, batch)
    else:
        prepared = ((body, prepare_record(body, settings)) for body in chain(head, stream))
        yield from _store_batches(store, prepared, actor, batch, settings)


def _in_workers(store: Store, bodies: Iterator[Any], settings: MappingSettings,
                actor: str | None, jobs: int, batch: int
                ) -> Iterator[tuple[Any, SaveResult | InvalidRecordError]]:
    """Each body with its result, in order, from one pool of ``jobs`` processes that prepare
    AND store whole batches (:class:`Turns`): batch k is written after batch k-1 committed,
    while the other workers prepare theirs. At most ``jobs`` x ``_WINDOW_PER_JOB`` batches are
    in flight. The first body is prepared here first: the workers fork with the core's tables
    and caches already built (and the store, its clock and hasher, as they are)."""
    first = next(bodies)
    prepare_record(first, settings)
    batches = chain([[first, *islice(bodies, batch - 1)]],
                    iter(lambda: list(islice(bodies, batch)), []))
    turns = Turns()
    pool = ProcessPoolExecutor(jobs, mp_context=_FORK, initializer=_start_worker,
                               initargs=(store, settings, actor, turns))
    done = False
    try:
        pending: deque[tuple[list[Any], Future[list[Any]]]] = deque()
        for k, chunk in enumerate(batches):
            pending.append((chunk, pool.submit(_prepare_and_store, k, chunk)))
            if len(pending) >= jobs * _WINDOW_PER_JOB:
                yield from _answered(pending.popleft())
        while pending:
            yield from _answered(pending.popleft())
        done = True
    finally:
        if not done:  # an error, or the consumer stopped: no later batch is written
            turns.stop()
        pool.shutdown(cancel_futures=True)


def _answered(item: tuple[list[Any], Future[list[Any]]]
              ) -> Iterator[tuple[Any, SaveResult | InvalidRecordError]]:
    chunk, future = item
    return zip(chunk, future.result(), strict=True)


class Turns:
    """Whose turn it is to write: batch k is stored after batch k-1 committed, across the
    import's worker processes. Once a batch fails (or the import stops) no later batch writes."""

    def __init__(self) -> None:
        self._next = _FORK.Value("q", 0, lock=False)  # guarded by the condition's lock
        self._changed: Condition = _FORK.Condition()

    @contextmanager
    def turn(self, k: int) -> Iterator[None]:
        """Wait for batch ``k``'s turn, run the block, then hand the turn to batch k+1 (or stop
        every later batch if the block raised)."""
        with self._changed:
            self._changed.wait_for(lambda: self._next.value in (k, -1))
            if self._next.value == -1:
                raise RuntimeError(f"batch {k} not stored: an earlier batch failed")
        passed = False
        try:
            yield
            passed = True
        finally:
            with self._changed:
                self._next.value = k + 1 if passed and self._next.value == k else -1
                self._changed.notify_all()

    def stop(self) -> None:
        """No batch writes after the one being written."""
        with self._changed:
            self._next.value = -1
            self._changed.notify_all()


#: The worker process's store, settings and actor (set once, when the pool forks it).
_WORKER: dict[str, Any] = {}


def _start_worker(store: Store, settings: MappingSettings, actor: str | None,
                  turns: Turns) -> None:
    store.after_fork()
    # What the fork inherited (modules, the code tables) is never garbage: the cyclic collector
    # stops scanning it, and runs less often: a batch's records are trees freed by their
    # reference counts, and full collections over a batch in preparation cost ~20 % of the CPU.
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
    _WORKER.update(store=store, settings=settings, actor=actor, turns=turns)


def _prepare_and_store(k: int, bodies: list[Any]) -> list[SaveResult | InvalidRecordError]:
    """Batch ``k`` prepared, then stored in its turn (in a worker process)."""
    settings = _WORKER["settings"]
    prepared = [(body, prepare_record(body, settings)) for body in bodies]
    with _WORKER["turns"].turn(k):
        return [result for _, result in _store_batches(
            _WORKER["store"], prepared, _WORKER["actor"], len(prepared), settings)]


def _store_batches(
    store: Store, prepared: Iterable[tuple[Any, Prepared]], actor: str | None, batch: int,
    settings: MappingSettings,
) -> Iterator[tuple[Any, SaveResult | InvalidRecordError]]:
    pairs = iter(prepared)
    while chunk := list(islice(pairs, batch)):
        for part in _one_version_each(chunk):
            writes = _amended_writes(store, [p for _, p in part
                                             if not isinstance(p, InvalidRecordError)], settings)
            saved = iter(store.save_records(writes, actor=actor))
            for body, p in part:
                yield body, p if isinstance(p, InvalidRecordError) else next(saved)


def _one_version_each(
    chunk: list[tuple[Any, Prepared]],
) -> Iterator[list[tuple[Any, Prepared]]]:
    """The chunk cut before each record whose session already occurs in the current part, so a
    session's earlier version is stored before its later one is compared with it."""
    part: list[tuple[Any, Prepared]] = []
    seen: set[str] = set()
    for body, p in chunk:
        sid = None if isinstance(p, InvalidRecordError) else p[0].session_id
        if sid is not None and sid in seen:
            yield part
            part, seen = [], set()
        part.append((body, p))
        if sid is not None:
            seen.add(sid)
    if part:
        yield part


__all__ = ["amended_resources", "amended_write", "import_records", "prepare",
           "prepare_record"]
