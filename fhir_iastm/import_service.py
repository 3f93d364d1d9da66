"""Prepare record bodies for the store and import many (``fhir-iastm import``).

* :func:`prepare_record` — validate, hash and map one body to what the store writes (CPU only).
* :func:`amended_write` / :func:`amended_resources` — the ``amended`` rule against the versions
  the store holds (docs/clinical.md#amended): the one rule of the save, the import and the
  reindex.
* :func:`import_records` — bodies stored in order, each exactly as ``service.save_record``
  would; with ``jobs`` > 1 they are prepared in ONE pool of worker processes for the whole run,
  fed a bounded window of chunks (the input streams, memory stays bounded), while this process
  writes. The first body is prepared here before the pool forks, so the workers inherit the
  core's code tables instead of each building them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from itertools import chain, islice
from typing import Any

from fhir_iastm.errors import InvalidRecordError, Issue
from fhir_iastm.facade import resource_set
from fhir_iastm.mapping.amend import amended_identifiers
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records import check_record, record_hash
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import ResourceSet, SaveResult, Store
from fhir_iastm.storage.fhir_types import JsonText, compact_json, with_text_bodies
from fhir_iastm.storage.store import RecordWrite

Prepared = RecordWrite | InvalidRecordError
#: Bodies per task sent to a worker process, and tasks in flight per worker.
_CHUNK = 25
_WINDOW_PER_JOB = 8


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


def _prepare_many(bodies: list[Any], settings: MappingSettings) -> list[Prepared]:
    """``prepare_record`` of each body in a worker process. What comes back is what the store
    writes, already serialized: the resource bodies and the record body as their JSON text, so
    the writing process neither unpickles nor serializes them (the original body stays with the
    writing process, which yields it)."""
    out: list[Prepared] = []
    for body in bodies:
        prepared = prepare_record(body, settings)
        if not isinstance(prepared, InvalidRecordError):
            record, raw, resources, digest = prepared
            prepared = (record, JsonText(compact_json(raw)),
                        resources and with_text_bodies(resources), digest)
        out.append(prepared)
    return out


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
    ``InvalidRecordError``). ``bodies`` is read as it is needed. ``jobs`` > 1: validation and
    mapping run in that many worker processes while this one writes; ``batch`` records share a
    transaction, in which each record is still stored whole or not at all
    (``Store.save_records``)."""
    stream = iter(bodies)
    head = list(islice(stream, batch + 1))
    if jobs > 1 and len(head) > batch:
        prepared = _in_workers(chain(head, stream), settings, jobs)
    else:
        prepared = ((body, prepare_record(body, settings)) for body in chain(head, stream))
    yield from _store_batches(store, prepared, actor, batch, settings)


def _in_workers(bodies: Iterator[Any], settings: MappingSettings, jobs: int
                ) -> Iterator[tuple[Any, Prepared]]:
    """Each body with its preparation, in order, from one pool of ``jobs`` processes fed at most
    ``jobs`` x ``_WINDOW_PER_JOB`` chunks ahead. The first body is prepared here first: the
    workers fork with the core's tables and caches already built."""
    first = next(bodies, None)
    if first is None:
        return
    yield first, prepare_record(first, settings)
    chunks = iter(lambda: list(islice(bodies, _CHUNK)), [])
    with ProcessPoolExecutor(jobs) as pool:
        pending: deque[tuple[list[Any], Future[list[Prepared]]]] = deque()
        for chunk in islice(chunks, jobs * _WINDOW_PER_JOB):
            pending.append((chunk, pool.submit(_prepare_many, chunk, settings)))
        while pending:
            chunk, done = pending.popleft()
            following = next(chunks, None)
            if following is not None:
                pending.append((following, pool.submit(_prepare_many, following, settings)))
            yield from zip(chunk, done.result(), strict=True)


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
