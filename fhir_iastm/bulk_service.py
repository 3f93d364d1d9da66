"""The Bulk Data ``$export`` use cases: kick-off, status, cancel, the job runner and clean-up;
and :func:`bulk_pull`, the client side (records from another server's export).

The API queues a job (:meth:`Exporter.kick_off`) and answers 202; ``fhir-iastm export-worker``
claims queued jobs and runs them outside any web request (:meth:`Exporter.run_next`). A job reads
one consistent snapshot of the facade's resources (``ExportStore.snapshot``), writes one NDJSON
file per type and at most ``file_resources`` resources per file under ``export_dir/<job id>/``,
and stores the manifest. Files expire ``retention`` seconds after the job ends and are then
deleted by the worker (:meth:`Exporter.clean`). docs/smart-bulk.md#bulk-data-export.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from fhir_iastm.client.auth import TargetAuth
from fhir_iastm.client.bulk import BulkClient, SmartCredentials
from fhir_iastm.errors import Issue, operation_outcome
from fhir_iastm.facade.dates import instant
from fhir_iastm.facade.export import (
    EXPORT_TYPES,
    PROVENANCE,
    SESSION_TYPES,
    SHARED_TYPES,
    ExportRequest,
    parse_type_filters,
)
from fhir_iastm.facade.group import clinic_group
from fhir_iastm.facade.provenance import session_provenance
from fhir_iastm.facade.summary import subset
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records import check_record
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import ExportJob, ExportStore, PatientScope, Snapshot, Store, StoredRecord
from fhir_iastm.storage import group_members as stored_members
from fhir_iastm.storage.fhir_write import bound_text
from fhir_iastm.sync.pull import PullError, records_from_resources

log = logging.getLogger("fhir_iastm.bulk")
#: Deleted resources per transaction Bundle line of the ``deleted`` file.
DELETED_PER_BUNDLE = 1000
PROGRESS_EVERY = 5000


class JobCancelledError(Exception):
    """The job was cancelled (DELETE of its status URL) while it ran."""


@dataclass(frozen=True)
class Output:
    """One written file: its type, name and line count."""

    type: str
    name: str
    count: int


class _Files:
    """NDJSON files of one job: ``<Type>-<n>.ndjson``, at most ``limit`` lines each."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.outputs: list[Output] = []
        self._open: tuple[str, IO[str], str, int] | None = None  # type, file, name, count

    def write(self, rtype: str, resource: dict[str, Any] | str) -> None:
        """Add a resource (a dict, or its JSON text already on one line)."""
        if self._open is None or self._open[0] != rtype or self._open[3] >= self.limit:
            self._close()
            number = 1 + sum(1 for o in self.outputs if o.type == rtype)
            name = f"{rtype}-{number}.ndjson"
            self._open = (rtype, (self.folder / name).open("w", encoding="utf-8"), name, 0)
        kind, handle, name, count = self._open
        handle.write((resource if isinstance(resource, str) else json.dumps(
            resource, ensure_ascii=False, separators=(",", ":"))) + "\n")
        self._open = (kind, handle, name, count + 1)

    def _close(self) -> None:
        if self._open is not None:
            kind, handle, name, count = self._open
            handle.close()
            self.outputs.append(Output(kind, name, count))
            self._open = None

    def close(self) -> list[Output]:
        self._close()
        return self.outputs


def _references(node: Any, found: dict[str, set[str]]) -> None:
    """Collect ``Practitioner/<id>`` and ``Organization/<id>`` references of a resource."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            rtype, _, rid = ref.partition("/")
            if rtype in found and rid and "/" not in rid:
                found[rtype].add(rid)
        for value in node.values():
            _references(value, found)
    elif isinstance(node, list):
        for value in node:
            _references(value, found)


def _elements_for(rtype: str, elements: tuple[str, ...]) -> tuple[str, ...]:
    names = []
    for item in elements:
        scope, dot, name = item.rpartition(".")
        if not dot or scope == rtype:
            names.append(name)
    return tuple(names)


class Exporter:
    """Export jobs over one store and one folder."""

    def __init__(self, store: Store, export_dir: Path, *, file_resources: int = 10000,
                 retention: int = 3600, canonical_base: str | None = None,
                 mapping: MappingSettings | None = None) -> None:
        self.store = store
        #: the settings the stored records were mapped with (Provenance is built with them)
        self.mapping = mapping or (MappingSettings(canonical_base=canonical_base)
                                   if canonical_base else MappingSettings())
        self.canonical_base = canonical_base  # of the OperationOutcomes it writes
        self.jobs = ExportStore(store)
        self.export_dir = export_dir
        self.file_resources = file_resources
        self.retention = retention

    # -- the web side -----------------------------------------------------------------------------
    def kick_off(self, request: ExportRequest, *, owner: str, request_url: str, base_url: str,
                 requires_token: bool) -> ExportJob | None:
        """Queue a job; None when the owner already has one queued or running (429).
        ``base_url``: the FHIR base the client used (the manifest's file URLs start with it)."""
        params = {**request.to_params(), "base": base_url}
        return self.jobs.create(uuid.uuid4().hex, owner, request_url, params, requires_token)

    def job(self, job_id: str, owner: str) -> ExportJob | None:
        """The owner's job (None when unknown, expired, cancelled or someone else's)."""
        job = self.jobs.get(job_id)
        if job is None or job.owner != owner or job.status in ("cancelled", "expired"):
            return None
        return job

    def file(self, job: ExportJob, name: str) -> Path | None:
        """A file of a finished job (None when it is not one of the job's files)."""
        listed = [o["url"].rsplit("/", 1)[-1] for o in
                  ((job.manifest or {}).get("output", []) + (job.manifest or {}).get("error", [])
                   + (job.manifest or {}).get("deleted", []))]
        if job.status != "done" or name not in listed:
            return None
        path = self.export_dir / job.id / name
        return path if path.is_file() else None

    def group(self, organization: dict[str, Any], last_updated: str) -> dict[str, Any]:
        """The Group of a clinic Organization (its managed Patients as members)."""
        members = stored_members(self.store, organization["id"])
        newest = max([last_updated, *(m[1] for m in members)])
        return clinic_group(organization, members, instant(newest))

    # -- the worker side --------------------------------------------------------------------------
    def run_next(self) -> bool:
        """Claim and run the oldest queued job; False when there is none."""
        job = self.jobs.claim()
        if job is None:
            return False
        self.run(job)
        return True

    def run(self, job: ExportJob) -> None:
        """Run one claimed job to ``done`` (or ``failed`` with an OperationOutcome)."""
        folder = self.export_dir / job.id
        expires = self.store.clock() + timedelta(seconds=self.retention)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            manifest, when = self._export(job, folder, str(job.params["base"]))
        except JobCancelledError:
            shutil.rmtree(folder, ignore_errors=True)
            return
        except Exception as exc:  # noqa: BLE001 - the job fails, the worker goes on
            log.exception("export failed", extra={"job": job.id})
            shutil.rmtree(folder, ignore_errors=True)
            outcome = operation_outcome([Issue("fatal", "exception", diagnostics=(
                f"the export failed: {type(exc).__name__}"), details="E_INTERNAL")],
                                        base=self.canonical_base)
            self.jobs.finish(job.id, status="failed", expires_at=expires, error=outcome)
            return
        self.jobs.finish(job.id, status="done", expires_at=expires, transaction_time=when,
                         manifest=manifest)

    def _export(self, job: ExportJob, folder: Path, base_url: str
                ) -> tuple[dict[str, Any], datetime]:
        req = ExportRequest.from_params(job.params)
        files = _Files(folder, self.file_resources)
        failures = _Files(folder, self.file_resources)  # OperationOutcomes of the ``error`` list
        with self.jobs.snapshot() as snap:
            for rtype, resource in self._resources(job.id, req, snap, base_url, failures):
                files.write(rtype, resource)
            deleted = snap.deleted(req.types, req.since, self._scope(req)) if req.since else []
            when = snap.transaction_time
        outputs = files.close()
        errors = self._errors(failures, req)
        gone = self._deleted(folder, deleted)
        url = f"{base_url}/$export-file/{job.id}/"
        manifest = {
            "transactionTime": instant(bound_text(when)),
            "request": job.request_url,
            "requiresAccessToken": job.requires_token,
            "output": [{"type": o.type, "url": url + o.name, "count": o.count} for o in outputs],
            "error": [{"type": "OperationOutcome", "url": url + e.name, "count": e.count}
                      for e in errors],
        }
        if gone:
            manifest["deleted"] = [{"type": "Bundle", "url": url + g.name, "count": g.count}
                                   for g in gone]
        return manifest, when

    @staticmethod
    def _scope(req: ExportRequest) -> PatientScope | None:
        if req.level == "system":
            return None
        return PatientScope(ids=req.patients, organization=req.group)

    def _resources(self, job_id: str, req: ExportRequest, snap: Snapshot, base_url: str,
                   failures: _Files) -> Iterator[tuple[str, dict[str, Any] | str]]:
        """The resources to write, by type: the JSON text the database builds
        (:meth:`Snapshot.lines`), parsed only to trim it (``_elements``) or to find the shared
        resources a patient-scoped export references; Provenance built here."""
        filters = parse_type_filters(req.type_filters, base_url)
        scope = self._scope(req)
        refs: dict[str, set[str]] = {t: set() for t in SHARED_TYPES}
        done = 0
        for rtype in req.written_types:
            found: Iterator[dict[str, Any] | str]
            if rtype == PROVENANCE:
                found = self._provenances(req, snap, filters, failures)
            elif scope is not None and rtype in SHARED_TYPES:
                found = snap.lines_by_ids(rtype, sorted(refs[rtype]), since=req.since)
            else:
                found = snap.lines(rtype, since=req.since, scope=scope,
                                   filters=filters.get(rtype, ()))
            elements = _elements_for(rtype, req.elements)
            for item in found:
                if scope is not None or elements:
                    body = json.loads(item) if isinstance(item, str) else item
                    if scope is not None:
                        _references(body, refs)
                    if elements:
                        item = subset(body, None, elements)
                done += 1
                if done % PROGRESS_EVERY == 0 and \
                        self.jobs.progress(job_id, f"{rtype}: {done} resources") == "cancelled":
                    raise JobCancelledError
                yield rtype, item
            if self.jobs.progress(job_id, f"{rtype} done, {done} resources") == "cancelled":
                raise JobCancelledError

    def _provenances(self, req: ExportRequest, snap: Snapshot,
                     filters: dict[str, list[tuple[Any, ...]]], failures: _Files
                     ) -> Iterator[dict[str, Any]]:
        """The Provenance of each session in the export (docs/smart-bulk.md#provenance): with
        Provenance among the types, of every session in scope whose record changed after
        ``_since``; as associated data only, of the sessions whose resources are exported. A
        record that cannot be mapped is reported in ``failures`` instead."""
        scope = self._scope(req)
        if PROVENANCE in req.types:
            stored = snap.session_records(since=req.since, scope=scope)
        else:
            owned = [t for t in req.types if t in SESSION_TYPES]
            if not owned:
                return
            stored = snap.session_records(scope=scope, sessions=snap.sessions_of(
                owned, req.since, filters, scope))
        for record in stored:
            try:
                rebuilt = from_dict(SessionRecord, record.body)
                body = session_provenance(rebuilt, replace(self.mapping,
                                                           record_hash=record.record_hash))
            except Exception as exc:  # noqa: BLE001 - reported per record, the export goes on
                failures.write("error", unmappable(record, exc, self.canonical_base))
                continue
            body["meta"] = {**(body.get("meta") or {}), "versionId": str(record.record_version),
                            "lastUpdated": instant(bound_text(record.received_at))}
            yield body

    def _errors(self, failures: _Files, req: ExportRequest) -> list[Output]:
        """Close the ``error`` files after adding what the whole export must report."""
        issues = [Issue("warning", "not-supported", diagnostics=f"'{name}' is not supported "
                        "and was ignored (Prefer: handling=lenient)", details="W_PARAM_IGNORED")
                  for name in req.ignored]
        waiting = self.store.count_unindexed()
        if waiting:
            issues.append(Issue("error", "incomplete", details="E_INTERNAL", diagnostics=(
                f"{waiting} stored record(s) have no FHIR resources yet and are not in this "
                "export; run `fhir-iastm init-db` to index them")))
        for issue in issues:
            failures.write("error", operation_outcome([issue], base=self.canonical_base))
        return failures.close()

    def _deleted(self, folder: Path, deleted: list[tuple[str, str]]) -> list[Output]:
        files = _Files(folder, self.file_resources)
        for start in range(0, len(deleted), DELETED_PER_BUNDLE):
            chunk = deleted[start:start + DELETED_PER_BUNDLE]
            files.write("deleted", {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"request": {"method": "DELETE", "url": f"{t}/{i}"}} for t, i in chunk]})
        return files.close()

    def clean(self) -> int:
        """Delete the files of expired and cancelled jobs; how many jobs were cleaned."""
        jobs = self.jobs.to_clean(self.store.clock())
        for job in jobs:
            shutil.rmtree(self.export_dir / job.id, ignore_errors=True)
            self.jobs.mark_expired(job.id)
        self.jobs.purge(self.store.clock() - timedelta(days=7))
        return len(jobs)


def unmappable(record: StoredRecord, exc: Exception, base: str | None) -> dict[str, Any]:
    """The OperationOutcome of a stored record version that could not be mapped to FHIR: the
    record (session id, version) and, as far as the record checks find them, its bad fields."""
    where = f"stored record '{record.session_id}' version {record.record_version}"
    issues = [Issue("error", "processing", details="E_UNMAPPABLE", diagnostics=(
        f"{where} could not be mapped to FHIR ({type(exc).__name__}); its Provenance is not in "
        "this export"))]
    _, found = check_record(record.body)
    issues += [replace(i, record_field=i.record_field or i.expression, expression=None,
                       diagnostics=f"{where}: {i.diagnostics}") for i in found if i.is_error]
    return operation_outcome(issues, base=base)


def make_bulk_client(base_url: str, *, auth: TargetAuth | None = None, token: str | None = None,
                     client_id: str | None = None, private_jwk: dict[str, Any] | None = None,
                     scope: str = "system/*.rs", max_wait: float = 3600.0,
                     max_retry_after: float = 60.0) -> BulkClient:
    """A Bulk Data client with the target's credentials ``auth`` (``sync_service.target_auth``),
    or a static token, or SMART Backend Services credentials."""
    smart = None
    if client_id is not None and private_jwk is not None:
        smart = SmartCredentials(client_id, private_jwk, scope)
    return BulkClient(base_url, auth=auth, token=token, smart=smart, max_wait=max_wait,
                      max_retry_after=max_retry_after)


def bulk_pull(client: BulkClient, *, settings: MappingSettings | None = None,
              path: str = "$export", since: str | None = None,
              type_filters: tuple[str, ...] = ()) -> Iterator[SessionRecord | PullError]:
    """Records from a Bulk Data export of the server (kick-off, wait, download, reverse-map);
    the server is told afterwards that the files may go. ``type_filters``: ``_typeFilter``
    queries (``Type?search``) passed on as they are."""
    params = [("_type", ",".join(EXPORT_TYPES))]
    if since is not None:
        params.append(("_since", since))
    params += [("_typeFilter", query) for query in type_filters]
    status = client.kick_off(path, params)
    manifest = client.wait(status)
    resources = list(client.resources(manifest))
    client.delete(status)
    return records_from_resources(resources, settings)


__all__ = ["Exporter", "Output", "bulk_pull", "make_bulk_client"]
