"""Dry run of a push: what the server holds for every entry, what the push would do to it, and
the RFC 6902 JSON Patch of each change — nothing written (docs/targets.md#dry-run).

It reuses the push's own resolution (``push.resolve``: session lookup, version guard,
retractions), then resolves the other entries with batched searches (``sync.lookup``: one
``identifier=a,b,...`` search per type, one ``_id=`` search for entries written by id) and
classifies each entry:

* ``create`` — nothing on the server answers to it;
* ``update`` — one resource does and differs from ours (server-owned elements left out);
* ``unchanged`` — it is equal, or it is a shared resource (never overwritten, docs/decisions.md#d5);
* ``retract`` — an element the record dropped, marked ``entered-in-error`` (docs/decisions.md#d8);
* ``conflict`` — several resources answer to it, or the server holds a newer record version.

:func:`apply_dry_run` writes the plan with ``If-Match`` on the versions it resolved, so a change on
the server in between is a conflict (409/412), not an overwrite.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir_iastm.errors import AmbiguousMatchError
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records.model import SessionRecord
from fhir_iastm.sync import diff
from fhir_iastm.sync.bundle_ops import location_of, response_ids, version_id, with_entries
from fhir_iastm.sync.lookup import entry_query, matches_by_query
from fhir_iastm.sync.outcome import PushOutcome
from fhir_iastm.sync.ports import FhirPort, Json, LastPushedView
from fhir_iastm.sync.push import Plan, Resolution, plan_record, pushed_outcome, resolve

ACTIONS = ("create", "update", "unchanged", "conflict", "retract")


@dataclass(frozen=True)
class PlannedEntry:
    """One entry of the would-be transaction and what the push would do to it."""

    action: str
    resource_type: str
    full_url: str
    ref: str | None = None
    version: str | None = None
    patch: tuple[Json, ...] = ()
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "resourceType": self.resource_type,
                               "fullUrl": self.full_url}
        if self.ref:
            out["resource"] = self.ref
        if self.version:
            out["versionId"] = self.version
        if self.note:
            out["note"] = self.note
        out["patch"] = list(self.patch)
        return out


@dataclass(frozen=True)
class DryRun:
    """The plan of one record version: the push's predicted status and one entry per write."""

    session_id: str
    record_version: int
    status: str
    entries: tuple[PlannedEntry, ...] = ()
    note: str | None = None
    #: the transaction :func:`apply_dry_run` sends (None: nothing to send)
    transaction: Json | None = None
    _plan: Plan | None = field(default=None, repr=False, compare=False)
    _found: Resolution | None = field(default=None, repr=False, compare=False)

    def counts(self) -> dict[str, int]:
        """Entries per action."""
        out = dict.fromkeys(ACTIONS, 0)
        for entry in self.entries:
            out[entry.action] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"session_id": self.session_id,
                               "record_version": self.record_version,
                               "dry_run": True, "status": self.status, "actions": self.counts()}
        if self.note:
            out["note"] = self.note
        out["entries"] = [e.to_json() for e in self.entries]
        return out


def dry_run(
    client: FhirPort,
    record: SessionRecord,
    *,
    settings: MappingSettings | None = None,
    last_pushed: LastPushedView | None = None,
    bundle: Json | None = None,
) -> DryRun:
    """The plan of pushing ``record`` now; reads the server, writes nothing."""
    plan = plan_record(record, settings or MappingSettings(), bundle)
    try:
        found = resolve(client, plan, last_pushed)
    except AmbiguousMatchError as exc:
        return DryRun(plan.session_id, record.record_version, "rejected", note=exc.message)
    if found.early is not None:
        return _without_write(plan, found.early)
    entries = list(found.entries)
    server = _server_state(client, entries, found)
    refs = {url: _ref(rs[0]) for url, rs in server.items() if len(rs) == 1}
    retracts = {str(e["fullUrl"]) for e in found.retractions}
    planned = [_classify(e, server.get(str(e["fullUrl"]), []), refs, retracts) for e in entries]
    conflict = next((p for p in planned if p.action == "conflict"), None)
    if conflict is not None:
        return DryRun(plan.session_id, record.record_version, "rejected", tuple(planned),
                      note=conflict.note)
    pinned = [_pinned(e, p) for e, p in zip(entries, planned, strict=True)]
    return DryRun(plan.session_id, record.record_version, "pushed", tuple(planned),
                  transaction=with_entries(plan.bundle, pinned), _plan=plan, _found=found)


def plan_id(run: DryRun) -> str:
    """The plan's identity: a digest of everything it shows (status, and per entry the action,
    the server resource and version it resolved to, the patch). Two dry runs have the same id
    exactly when applying either would write the same thing over the same server versions."""
    text = json.dumps(run.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def apply_dry_run(client: FhirPort, run: DryRun) -> PushOutcome:
    """Write the plan: every resolved resource ``PUT Type/id`` with ``If-Match`` on the version
    the dry run saw, every create ``POST`` with ``ifNoneExist``. Raises ``FhirConflictError``
    when the server changed in between (nothing of the transaction is then written)."""
    if run.transaction is None or run._plan is None or run._found is None:
        raise ValueError(f"nothing to apply: the dry run's status is {run.status!r}")
    response = client.transaction(run.transaction)
    return pushed_outcome(run._plan, run._found, response_ids(run.transaction["entry"], response))


def observed_actions(
    sent: Sequence[Mapping[str, Any]], response: Mapping[str, Any], run: DryRun
) -> dict[str, str]:
    """fullUrl -> what the server did to each sent entry, from its transaction-response:
    ``create`` (201), ``unchanged`` (the version the dry run saw is still current), else
    ``update`` or ``retract``. The dry run's test oracle (docs/targets.md#dry-run)."""
    planned = {p.full_url: p for p in run.entries}
    out: dict[str, str] = {}
    for entry, answer in zip(sent, response.get("entry") or [], strict=False):
        reply = answer.get("response") or {}
        url = str(entry.get("fullUrl"))
        before = planned.get(url)
        after = location_of(answer)[1]
        if str(reply.get("status", "")).startswith("201"):
            out[url] = "create"
        elif before is not None and before.version is not None and after == before.version:
            out[url] = "unchanged"
        else:
            out[url] = "retract" if before is not None and before.action == "retract" else "update"
    return out


def _without_write(plan: Plan, early: PushOutcome) -> DryRun:
    """Superseded: every entry a conflict; unchanged: every entry unchanged; an
    entered-in-error session never pushed: no entry (nothing is sent)."""
    action = "conflict" if early.status == "superseded" else "unchanged"
    entries: tuple[PlannedEntry, ...] = ()
    if early.status == "superseded" or early.fhir_ids:
        entries = tuple(
            PlannedEntry(action, str(e["resource"]["resourceType"]), str(e["fullUrl"]))
            for e in plan.bundle["entry"]
        )
    return DryRun(plan.session_id, plan.record.record_version, early.status, entries,
                  note=early.note)


def _ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _by_id(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    """(type, id) of an entry written as ``PUT Type/id``."""
    request = entry.get("request") or {}
    parts = str(request.get("url") or "").split("/")
    if request.get("method") == "PUT" and len(parts) == 2 and "?" not in parts[1]:
        return parts[0], parts[1]
    return None


def _server_state(
    client: FhirPort, entries: Sequence[Json], found: Resolution
) -> dict[str, list[Json]]:
    """fullUrl -> the server resources each entry resolves to (batched searches)."""
    wanted: dict[str, list[str]] = {}
    by_id: dict[str, list[str]] = {}
    for entry in entries:
        query, pinned = entry_query(entry), _by_id(entry)
        if query is not None:
            wanted.setdefault(entry["resource"]["resourceType"], []).append(query)
        elif pinned is not None:
            by_id.setdefault(pinned[0], []).append(pinned[1])
    matches = matches_by_query(client, wanted)
    current = {_ref(found.server): found.server} if found.server is not None else {}
    for rtype, rids in sorted(by_id.items()):
        missing = [i for i in rids if f"{rtype}/{i}" not in current]
        if missing:
            for resource in client.search_all(rtype, [("_id", ",".join(missing))]):
                current.setdefault(_ref(resource), resource)
    out: dict[str, list[Json]] = {}
    for entry in entries:
        query, pinned = entry_query(entry), _by_id(entry)
        rtype = entry["resource"]["resourceType"]
        if query is not None:
            out[str(entry["fullUrl"])] = matches.get((rtype, query), [])
        elif pinned is not None:
            hit = current.get("/".join(pinned))
            out[str(entry["fullUrl"])] = [hit] if hit is not None else []
    return out


def _classify(
    entry: Mapping[str, Any], server: Sequence[Json], refs: Mapping[str, str], retracts: set[str]
) -> PlannedEntry:
    ours = diff.resolved(entry["resource"], refs)
    rtype, url = str(ours["resourceType"]), str(entry["fullUrl"])
    if len(server) > 1:
        note = f"{rtype}: the business identifier matched {len(server)} resources"
        return PlannedEntry("conflict", rtype, url, note=note)
    if not server:
        return PlannedEntry("create", rtype, url, patch=tuple(diff.patch(None, ours)))
    theirs = server[0]
    ref, vid = _ref(theirs), version_id(theirs)
    if url in retracts:
        return PlannedEntry("retract", rtype, url, ref, vid, tuple(diff.patch(theirs, ours)))
    if entry["request"]["method"] == "POST":
        return PlannedEntry("unchanged", rtype, url, ref, vid,
                            note="shared resource: kept as the server holds it")
    ops = tuple(diff.patch(theirs, ours))
    return PlannedEntry("update" if ops else "unchanged", rtype, url, ref, vid, ops)


def _pinned(entry: Json, planned: PlannedEntry) -> Json:
    """The entry as :func:`apply_dry_run` sends it (pinned to the resolved version)."""
    request = entry.get("request") or {}
    if planned.action == "create" and request.get("method") == "PUT" and entry_query(entry):
        condition = str(request["url"]).split("?", 1)[1]
        rtype = planned.resource_type
        return {**entry, "request": {"method": "POST", "url": rtype, "ifNoneExist": condition}}
    if planned.action in ("update", "unchanged") and request.get("method") == "PUT":
        resource = {**entry["resource"], "id": planned.ref.split("/")[1] if planned.ref else None}
        pin: Json = {"method": "PUT", "url": planned.ref}
        if planned.version is not None:
            pin["ifMatch"] = f'W/"{planned.version}"'
        return {"fullUrl": entry["fullUrl"], "resource": resource, "request": pin}
    return entry


__all__ = ["ACTIONS", "DryRun", "PlannedEntry", "apply_dry_run", "dry_run", "observed_actions",
           "plan_id"]
