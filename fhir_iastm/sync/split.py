"""A session's transaction split for a server that limits the entries of a Bundle
(receiver setting ``max_bundle_entries``, docs/targets.md#receiver-settings).

One transaction is atomic; several are not. To keep the version guard (docs/decisions.md#d7)
meaningful, the session's IASTM Procedure — the guard's marker — is written twice:

1. the entries go out in dependency order, at most ``max_entries`` per transaction: entries that
   refer to each other (an Encounter and its diagnosis Conditions) share one, and every entry
   comes after those it refers to (the Provenance last); references to entries of earlier parts
   are rewritten to the ``Type/id`` the server answered. In these parts the Procedure's
   ``source-record-hash`` is ``pending:<hash>``;
2. a last transaction writes the Procedure with its real hash, ``PUT Procedure/{id}`` with
   ``If-Match`` on the version part 1 left.

If a part fails, the server holds some new resources and a Procedure marked pending: the guard
never takes that for ``unchanged``, so the outbox's retry pushes the whole session again
(conditional writes: nothing duplicated). A write by someone else in between fails the last
``If-Match`` (409): the push re-reads and retries, as for one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fhir_iastm.errors import FhirServerError
from fhir_iastm.sync.bundle_ops import (
    Systems,
    is_session_procedure,
    location_of,
    rewrite_references,
    with_entries,
)
from fhir_iastm.sync.ports import FhirPort, Json

PENDING = "pending:"


def _references(value: Any) -> set[str]:
    """Every ``reference`` string inside a resource."""
    if isinstance(value, dict):
        found = {value["reference"]} if isinstance(value.get("reference"), str) else set()
        for item in value.values():
            found |= _references(item)
        return found
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def units(entries: Sequence[Json]) -> list[list[Json]]:
    """The entries as groups that must share a transaction (entries referring to each other,
    such as an Encounter and its diagnosis Conditions), each group after the groups it refers
    to (Tarjan's strongly connected components, in the order they complete)."""
    index = {str(e["fullUrl"]): i for i, e in enumerate(entries)}
    deps = [sorted({index[r] for r in _references(e["resource"]) if r in index} - {i})
            for i, e in enumerate(entries)]
    order: list[list[int]] = []
    low: dict[int, int] = {}
    seen: dict[int, int] = {}
    stack: list[int] = []

    def visit(node: int) -> None:
        seen[node] = low[node] = len(seen)
        stack.append(node)
        for dep in deps[node]:
            if dep not in seen:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], seen[dep])
        if low[node] == seen[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            order.append(sorted(group))

    for node in range(len(entries)):
        if node not in seen:
            visit(node)
    return [[entries[i] for i in group] for group in order]


def parts(entries: Sequence[Json], max_entries: int) -> list[list[Json]]:
    """Dependency-ordered transactions of at most ``max_entries`` entries; a group that refers
    to itself larger than that travels alone (the server then answers for it)."""
    out: list[list[Json]] = []
    for group in units(entries):
        if out and len(out[-1]) + len(group) <= max_entries:
            out[-1].extend(group)
        else:
            out.append(list(group))
    return out


def pending(resource: Mapping[str, Any], systems: Systems) -> Json:
    """The session Procedure with its ``source-record-hash`` marked pending."""
    out = dict(resource)
    out["extension"] = [
        {**ext, "valueString": PENDING + str(ext.get("valueString"))}
        if ext.get("url") == systems.hash_ext else ext
        for ext in resource.get("extension") or []
    ]
    return out


def send_split(
    client: FhirPort, tx: Json, max_entries: int, systems: Systems
) -> tuple[list[Json], Json]:
    """Send ``tx`` in parts of at most ``max_entries`` plus the commit of the session Procedure;
    (every entry sent, one transaction-response holding every answer in that order)."""
    [final] = [e for e in tx["entry"] if is_session_procedure(e["resource"], systems)]
    entries = [{**e, "resource": pending(e["resource"], systems)} if e is final else e
               for e in tx["entry"]]
    refs: dict[str, str] = {}
    written: tuple[str | None, str | None] = (None, None)
    sent: list[Json] = []
    answers: list[Json] = []
    for chunk in parts(entries, max(2, max_entries)):
        part = [_resolved(e, refs) for e in chunk]
        response = client.transaction(with_entries(tx, part))
        for entry, answer in zip(part, response.get("entry") or [], strict=True):
            refs[str(entry["fullUrl"])] = location_of(answer)[0] or ""
            if entry["fullUrl"] == final["fullUrl"]:
                written = location_of(answer)
        sent += part
        answers += response["entry"]
    commit = _commit(_resolved(final, refs), written)
    response = client.transaction(with_entries(tx, [commit]))
    return sent + [commit], {**response, "entry": answers + response["entry"]}


def _resolved(entry: Json, refs: Mapping[str, str]) -> Json:
    resource: Any = entry["resource"]
    for full_url, ref in refs.items():
        resource = rewrite_references(resource, full_url, ref)
    return {**entry, "resource": resource}


def _commit(entry: Json, written: tuple[str | None, str | None]) -> Json:
    ref, version = written
    if ref is None:
        raise FhirServerError("POST transaction: the server did not say where it wrote the "
                              "session Procedure (no location)")
    request: Json = {"method": "PUT", "url": ref}
    if version:
        request["ifMatch"] = f'W/"{version}"'
    resource = {**entry["resource"], "id": ref.split("/")[1]}
    return {"fullUrl": entry["fullUrl"], "resource": resource, "request": request}


__all__ = ["PENDING", "parts", "pending", "send_split", "units"]
