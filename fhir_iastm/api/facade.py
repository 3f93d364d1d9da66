"""Edge (Flask): the FHIR facade's read model — the stored records projected to FHIR resources.

Each app process keeps an in-memory projection: for every current stored record, the resources of
its mapped Bundle with stable logical ids (``facade.stored_resources``). The projection is refreshed
from the store before each facade request, reading only records updated since the last refresh (ids
and versions first, then the bodies of the sessions it lacks), so several gunicorn processes (or
machines) on one database serve the same data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from fhir_iastm.errors import NotFoundError
from fhir_iastm.facade import stored_resources
from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import Store, StoredRecord
from fhir_iastm.storage.schema import records

#: Re-read records updated within this margin of the last refresh (clock granularity, racing
#: writes).
_MARGIN = timedelta(seconds=2)
#: Up to this many changed sessions are read one by one; more (a first refresh, a burst) in pages.
_ONE_BY_ONE = 100
SHARED_TYPES = frozenset({"Patient", "Practitioner", "Organization"})


class Facade:
    """Stored records as FHIR resources, by type and id."""

    def __init__(self, store: Store, mapping: MappingSettings) -> None:
        self.store = store
        self.mapping = mapping
        self._lock = threading.Lock()
        self._by_session: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._by_id: dict[tuple[str, str], dict[str, Any]] = {}
        # Indexes over _by_id so a search reads only its candidates, sorted once per change:
        # type -> {id: resource}, (type, subject reference) -> {id: resource}, and the sorted lists.
        self._by_type: dict[str, dict[str, dict[str, Any]]] = {}
        self._by_subject: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._sorted: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        self._since: datetime | None = None

    def refresh(self) -> None:
        """Project every record stored or changed since the last refresh."""
        with self._lock:
            started = self.store.clock()
            changed = self._changed() if self._since is not None else None
            if changed is None or len(changed) > _ONE_BY_ONE:
                self._project_pages()
            else:
                for session_id in changed:
                    try:
                        self._project(self.store.get_record(session_id))
                    except NotFoundError:
                        continue
            self._since = started - _MARGIN

    def _changed(self) -> list[str]:
        """Sessions updated since the last refresh (margin included) whose current version the
        projection lacks, in session_id order; reads ids and versions only, not the bodies."""
        stmt = (
            select(records.c.session_id, records.c.record_version)
            .where(records.c.updated_at >= self._since)
            .order_by(records.c.session_id)
        )
        with self.store.read() as conn:
            rows = conn.execute(stmt).all()
        return [sid for sid, version in rows
                if self._by_session.get(sid, (None,))[0] != version]

    def _project_pages(self) -> None:
        cursor: str | None = None
        while True:
            page = self.store.list_records(since=self._since, limit=500, cursor=cursor)
            for stored in page.items:
                self._project(stored)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _project(self, stored: StoredRecord) -> None:
        session_id, version = stored.session_id, stored.record_version
        known = self._by_session.get(session_id)
        if known is not None and known[0] == version:
            return
        # The stored body passed records.load_record when it was saved: rebuild it without a second
        # validation. The stored hash is the one to_fhir would compute, and the fresh Bundle is
        # ours alone: no second hash, no deep copy.
        mapping = replace(self.mapping, record_hash=stored.record_hash)
        bundle = to_fhir(from_dict(SessionRecord, stored.body), mapping)
        resources = stored_resources(bundle, copy_=False)
        if known is not None:
            # Session-owned resources a newer version no longer emits leave the read model;
            # shared ones (Patient, Practitioner, Organization) may belong to other sessions.
            for old in known[1]:
                if old["resourceType"] not in SHARED_TYPES:
                    self._drop(old["resourceType"], old["id"])
        self._by_session[session_id] = (version, resources)
        for resource in resources:
            self._put(resource)

    def _put(self, resource: dict[str, Any]) -> None:
        rtype, id_ = resource["resourceType"], resource["id"]
        self._drop(rtype, id_)
        self._by_id[(rtype, id_)] = resource
        self._by_type.setdefault(rtype, {})[id_] = resource
        subject = _subject(resource)
        if subject is not None:
            self._by_subject.setdefault((rtype, subject), {})[id_] = resource
        self._sorted.clear()

    def _drop(self, rtype: str, id_: str) -> None:
        old = self._by_id.pop((rtype, id_), None)
        if old is None:
            return
        self._by_type[rtype].pop(id_, None)
        subject = _subject(old)
        if subject is not None:
            self._by_subject[(rtype, subject)].pop(id_, None)
        self._sorted.clear()

    def read(self, resource_type: str, id_: str) -> dict[str, Any] | None:
        """One resource by type and logical id."""
        self.refresh()
        return self._by_id.get((resource_type, id_))

    def of_type(self, resource_type: str, subject: str | None = None) -> Iterator[dict[str, Any]]:
        """Every resource of a type, in a stable order (by id); with ``subject`` (a literal
        reference such as ``Patient/<id>``) only those whose ``subject.reference`` is it."""
        self.refresh()
        with self._lock:
            key = (resource_type, subject)
            found = self._sorted.get(key)
            if found is None:
                if subject is None:
                    pool = self._by_type.get(resource_type, {})
                else:
                    pool = self._by_subject.get((resource_type, subject), {})
                found = self._sorted[key] = sorted(pool.values(), key=lambda r: r["id"])
            return iter(found)


def _subject(resource: dict[str, Any]) -> str | None:
    ref = (resource.get("subject") or {}).get("reference")
    return ref if isinstance(ref, str) else None


__all__ = ["Facade"]
