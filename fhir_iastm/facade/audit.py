"""AuditEvents of the facade's reads of patient data, after the Basic Audit Log Patterns (BALP).

One read, vread, instance history, search or ``$export`` kick-off becomes one R4 AuditEvent
(https://hl7.org/fhir/R4/auditevent.html): type ``rest``, subtype the RESTful interaction, action
``R`` (``E`` for the export operation), the outcome from the HTTP status, the client (its SMART
client id or the digest that names its static token) and this service as agents, and the
entities read: every Patient the answer concerns, the resources read and, for a search or export,
the query. The query keeps the parameter *names* only, never their values (a value can be an MRN,
a name or a birth date), so the event holds no PHI beyond references. docs/audit.md.

Pure: the edge (``api/audit.py``) collects an :class:`Access` per request and stores the event.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_iastm import __version__
from fhir_iastm.facade.cursor import decode_cursor, encode_cursor
from fhir_iastm.facade.dates import date_bounds
from fhir_iastm.facade.params import DATE_PREFIXES
from fhir_iastm.facade.parse import SearchError
from fhir_iastm.storage import AuditQuery, AuditRow, DateMatch, Sort, StoredResource

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
#: The interactions audited (codes of restful-interaction) and their action (R4 audit-event-action).
ACTIONS = {"read": "R", "vread": "R", "history-instance": "R", "search-type": "E",
           "operation": "E"}
#: The search parameters of ``/fhir/AuditEvent`` (besides _count, _cursor, _format, _pretty).
SEARCH_PARAMS = ("date", "agent", "altid", "entity", "patient", "_id")
MAX_COUNT = 1000
_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]{1,39})/([A-Za-z0-9\-.]{1,64})(?:/_history/\d+)?$")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_SORT = Sort("recorded", descending=True)


@dataclass(frozen=True)
class Access:
    """What one request read: interaction, the references of the answer, the query's names."""

    interaction: str
    status: int
    agent: str
    references: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    query: str | None = None
    address: str | None = None


def outcome(status: int) -> str:
    """R4 audit-event-outcome: 0 success, 4 minor failure (4xx), 8 serious failure (5xx)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def split_reference(text: str) -> tuple[str, str] | None:
    """``(type, id)`` of a relative or absolute reference (``…/Patient/x[/_history/n]``)."""
    match = _REF.search(text)
    return None if match is None else (match.group(1), match.group(2))


def patient_references(bodies: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    """Every Patient the resources concern (the Patient itself, ``subject`` or ``patient``),
    each once, in order of first appearance."""
    found: dict[str, None] = {}
    for body in bodies:
        if body.get("resourceType") == "Patient" and isinstance(body.get("id"), str):
            found[f"Patient/{body['id']}"] = None
            continue
        for element in ("subject", "patient"):
            ref = body.get(element)
            key = split_reference(ref.get("reference", "")) if isinstance(ref, dict) else None
            if key is not None and key[0] == "Patient":
                found[f"{key[0]}/{key[1]}"] = None
    return tuple(found)


#: The elements :func:`patient_references` reads, in ``StoredResource.head``'s order.
_HEAD = ("resourceType", "id", "subject", "patient")


def concerned(resources: Iterable[StoredResource]) -> tuple[str, ...]:
    """:func:`patient_references` of stored resources, from the elements the database read for
    it (``StoredResource.head``: absent and null alike read as None, as ``dict.get`` does)
    where it did, so a search's bodies need not be decoded."""
    return patient_references(
        r.body if r.head is None else dict(zip(_HEAD, json.loads(r.head), strict=True))
        for r in resources)


def query_names(path: str, names: Iterable[str]) -> str:
    """The query as BALP keeps it, but with parameter names only: ``Observation?code&date``."""
    unique = list(dict.fromkeys(n for n in names if n not in ("_format", "_pretty", "_cursor")))
    return path + ("?" + "&".join(unique) if unique else "")


def entity_references(access: Access) -> list[str]:
    """The patients, then the resources read that are not one of those patients."""
    patients = dict.fromkeys(access.patients)
    others = (r for r in access.references if (
        "/".join(split_reference(r) or ()) not in patients))
    return [*patients, *dict.fromkeys(others)]


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _entity(reference: str) -> dict[str, Any]:
    if reference.startswith("Patient/"):
        return {"what": {"reference": reference},
                "type": _coding(ENTITY_TYPE, "1", "Person"),
                "role": _coding(OBJECT_ROLE, "1", "Patient")}
    return {"what": {"reference": reference},
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "4", "Domain Resource")}


def _agents(access: Access, site: str) -> list[dict[str, Any]]:
    client: dict[str, Any] = {
        "type": {"coding": [_coding(DCM, "110153", "Source Role ID")]},
        "who": {"display": access.agent}, "altId": access.agent, "requestor": True}
    if access.address:
        client["network"] = {"address": access.address, "type": "2"}
    server = {"type": {"coding": [_coding(DCM, "110152", "Destination Role ID")]},
              "who": {"display": f"fhir-iastm FHIR facade {site}"}, "requestor": False}
    return [client, server]


def audit_event(access: Access, event_id: str, recorded: datetime, site: str) -> dict[str, Any]:
    """The AuditEvent of one request (``site``: our FHIR base URL)."""
    entities = [_entity(ref) for ref in entity_references(access)]
    if access.query is not None:
        entities.append({"type": _coding(ENTITY_TYPE, "2", "System Object"),
                         "role": _coding(OBJECT_ROLE, "24", "Query"),
                         "query": base64.b64encode(access.query.encode()).decode()})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": _coding(EVENT_TYPE, "rest", "RESTful Operation"),
        "subtype": [_coding(INTERACTION, access.interaction, access.interaction)],
        "action": ACTIONS[access.interaction],
        "recorded": recorded.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": outcome(access.status),
        "outcomeDesc": f"HTTP {access.status}",
        "agent": _agents(access, site),
        "source": {"site": site, "observer": {"display": f"fhir-iastm {__version__}"},
                   "type": [_coding(SOURCE_TYPE, "4", "Application Server")]},
    }
    if entities:
        event["entity"] = entities
    return event


def audit_row(access: Access, event_id: str, recorded: datetime, site: str) -> AuditRow:
    """The stored form of one request's AuditEvent: the body and its search index."""
    refs = (split_reference(r) for r in entity_references(access))
    return AuditRow(event_id, recorded, access.agent, audit_event(access, event_id, recorded, site),
                    tuple(r for r in refs if r is not None))


# --- search of /fhir/AuditEvent --------------------------------------------------------------

def _date(value: str) -> DateMatch:
    prefix = value[:2] if value[:2].isalpha() else "eq"
    if prefix not in DATE_PREFIXES:
        raise SearchError("date", f"unknown prefix '{value[:2]}'")
    try:
        low, high = date_bounds(value[2:] if value[:2].isalpha() else value)
    except ValueError as exc:
        raise SearchError("date", str(exc)) from None
    return DateMatch(prefix, low, high)


def _reference(name: str, value: str, rtype: str | None) -> tuple[str | None, str]:
    if _ID.fullmatch(value):
        return rtype, value
    key = split_reference(value)
    if key is None or (rtype is not None and key[0] != rtype):
        raise SearchError(name, f"'{value[:80]}' is not a {rtype or 'resource'} reference")
    return key


def _agent(name: str, value: str) -> str:
    if not value or len(value) > 64:
        raise SearchError(name, "give the agent's altId (client:<id>, token:<digest> or open)")
    return value


def parse_audit_search(args: list[tuple[str, str]]) -> tuple[AuditQuery, list[str]]:
    """The store's query of an AuditEvent search and the parameters it ignored (unknown ones)."""
    dates, refs, ids, ignored = [], [], [], []
    agents: list[str] = []
    count, cursor = 50, None
    for name, value in args:
        base = name.split(":", 1)[0]
        if base == "date":
            dates.append(_date(value))
        elif base in ("agent", "altid"):
            agents.append(_agent(base, value))
        elif base in ("entity", "patient"):
            refs.append(_reference(base, value, "Patient" if base == "patient" else None))
        elif base == "_id":
            ids.append(value)
        elif base == "_count":
            if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= MAX_COUNT:
                raise SearchError("_count", f"must be a whole number from 1 to {MAX_COUNT}")
            count = int(value)
        elif base == "_cursor":
            cursor = decode_cursor(value, _SORT)
        elif base not in ("_format", "_pretty"):
            ignored.append(name)
    return AuditQuery(tuple(dates), tuple(agents), tuple(refs), tuple(ids), count, cursor), ignored


def next_cursor(after: tuple[str | None, int] | None) -> str | None:
    """The ``_cursor`` of the next page (None on the last page)."""
    return None if after is None else encode_cursor(_SORT, after)


__all__ = ["ACTIONS", "SEARCH_PARAMS", "Access", "audit_event", "audit_row", "concerned",
           "next_cursor", "outcome", "parse_audit_search", "patient_references", "query_names",
           "split_reference"]
