"""Edge (Flask): the FHIR facade's read model — the stored records projected to FHIR resources.

Each app process keeps an in-memory projection: for every current stored record, the resources of
its mapped Bundle with stable logical ids (``facade.stored_resources``). The projection is refreshed
from the store before each facade request, reading only records updated since the last refresh, so
several gunicorn processes (or machines) on one database serve the same data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from fhir_iastm.facade import stored_resources
from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.records import load_record
from fhir_iastm.storage import Store

#: Re-read records updated within this margin of the last refresh (clock granularity, racing writes).
_MARGIN = timedelta(seconds=2)
SHARED_TYPES = frozenset({"Patient", "Practitioner", "Organization"})


class Facade:
    """Stored records as FHIR resources, by type and id."""

    def __init__(self, store: Store, mapping: MappingSettings) -> None:
        self.store = store
        self.mapping = mapping
        self._lock = threading.Lock()
        self._by_session: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._by_id: dict[tuple[str, str], dict[str, Any]] = {}
        self._since: datetime | None = None

    def refresh(self) -> None:
        """Project every record stored or changed since the last refresh."""
        with self._lock:
            started = self.store.clock()
            cursor: str | None = None
            while True:
                page = self.store.list_records(since=self._since, limit=500, cursor=cursor)
                for stored in page.items:
                    self._project(stored.session_id, stored.record_version, stored.body)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            self._since = started - _MARGIN

    def _project(self, session_id: str, version: int, body: dict[str, Any]) -> None:
        known = self._by_session.get(session_id)
        if known is not None and known[0] == version:
            return
        resources = stored_resources(to_fhir(load_record(body), self.mapping))
        if known is not None:
            # Session-owned resources a newer version no longer emits leave the read model;
            # shared ones (Patient, Practitioner, Organization) may belong to other sessions.
            for old in known[1]:
                if old["resourceType"] not in SHARED_TYPES:
                    self._by_id.pop((old["resourceType"], old["id"]), None)
        self._by_session[session_id] = (version, resources)
        for resource in resources:
            self._by_id[(resource["resourceType"], resource["id"])] = resource

    def read(self, resource_type: str, id_: str) -> dict[str, Any] | None:
        """One resource by type and logical id."""
        self.refresh()
        return self._by_id.get((resource_type, id_))

    def of_type(self, resource_type: str) -> Iterator[dict[str, Any]]:
        """Every resource of a type, in a stable order (by id)."""
        self.refresh()
        found = [r for (t, _), r in self._by_id.items() if t == resource_type]
        return iter(sorted(found, key=lambda r: r["id"]))


__all__ = ["Facade"]
