"""Pull IASTM session records back from a FHIR server (docs/decisions.md#d11,
docs/decisions.md#round-trip).

One search finds the IASTM Procedures (``identifier={CANON}/sid/iastm-session|…``) and brings
everything a record needs on the same page: ``_include`` of the Encounter, the reason Conditions,
the Patient and the performers, ``_include:iterate`` of the Encounter's Organization, and
``_revinclude`` of the Observations and adjunct Procedures that are ``partOf`` it. Paging follows
``next`` links. Each session is reverse-mapped on its own; one that fails yields a ``PullError``
(never silently dropped). Children whose ``source-record-version`` differs from the session
Procedure's were retracted by a later version (docs/decisions.md#d8) and are not part of the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_iastm.errors import IastmError, Issue, operation_outcome
from fhir_iastm.mapping import from_fhir, ids
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records.model import SessionRecord
from fhir_iastm.sync.bundle_ops import Systems, is_session_procedure, source_version
from fhir_iastm.sync.ports import FhirPort, Json

INCLUDES = (
    "Procedure:encounter",
    "Procedure:reason-reference",
    "Procedure:patient",
    "Procedure:performer",
)
REVINCLUDES = ("Observation:part-of", "Procedure:part-of")
SHARED_TYPES = ("Patient", "Practitioner", "Organization")


@dataclass(frozen=True)
class PullError:
    """A session found on the server that could not be mapped back to a record."""

    session_id: str | None
    procedure: str
    issues: tuple[Issue, ...]

    def to_json(self, base: str | None = None) -> dict[str, Any]:
        """One JSON line for the CLI; the OperationOutcome's project URLs under the canonical
        ``base`` (None: the default)."""
        return {
            "session_id": self.session_id,
            "procedure": self.procedure,
            "error": operation_outcome(self.issues, base=base),
        }


def pull_query(
    systems: Systems,
    *,
    base: str,
    session_id: str | None = None,
    patient_mrn: str | None = None,
    clinic_id: str | None = None,
    since: str | None = None,
    page_size: int = 50,
) -> list[tuple[str, str]]:
    """The decision-11 search parameters (``GET Procedure?…``)."""
    value = ids.fhir_escape(session_id) if session_id else ""
    params = [("identifier", f"{systems.session}|{value}")]
    if patient_mrn or clinic_id:
        system = ids.sid(base, f"clinic/{clinic_id}/mrn") if clinic_id else None
        mrn = ids.fhir_escape(patient_mrn) if patient_mrn else ""
        params.append(("patient.identifier", f"{system}|{mrn}" if system else mrn))
    if since:
        params.append(("_lastUpdated", f"ge{since}"))
    params += [("_include", name) for name in INCLUDES]
    params += [("_revinclude", name) for name in REVINCLUDES]
    params += [("_include:iterate", "Encounter:service-provider"), ("_count", str(page_size))]
    return params


def pull_records(
    client: FhirPort,
    *,
    session_id: str | None = None,
    patient_mrn: str | None = None,
    clinic_id: str | None = None,
    since: str | None = None,
    settings: MappingSettings | None = None,
    page_size: int = 50,
) -> Iterator[SessionRecord | PullError]:
    """Every matching session as a record (or a ``PullError``), page by page."""
    settings = settings or MappingSettings()
    systems = Systems.of(settings.base)
    params = pull_query(
        systems,
        base=settings.base,
        session_id=session_id,
        patient_mrn=patient_mrn,
        clinic_id=clinic_id,
        since=since,
        page_size=page_size,
    )
    shared: dict[str, Json] = {}  # Patients, Practitioners, Organizations seen on earlier pages
    for page in client.search_pages("Procedure", params):
        index, matches = _index_page(page, systems)
        shared.update({k: v for k, v in index.items() if k.split("/")[0] in SHARED_TYPES})
        index = {**shared, **index}
        children = _children(index.values())
        for procedure in matches:
            resources = session_resources(procedure, index, children, systems)
            yield _reverse(resources, procedure, systems, settings)


def records_from_resources(
    resources: Iterable[Json], settings: MappingSettings | None = None
) -> Iterator[SessionRecord | PullError]:
    """Records from a flat set of resources (a Bulk Data export): every IASTM session Procedure
    with the resources its record needs, reverse-mapped one by one (held in memory)."""
    settings = settings or MappingSettings()
    systems = Systems.of(settings.base)
    index = {f"{r['resourceType']}/{r['id']}": r for r in resources
             if r.get("resourceType") and r.get("id")}
    children = _children(index.values())
    for resource in list(index.values()):
        if resource["resourceType"] == "Procedure" and is_session_procedure(resource, systems):
            found = session_resources(resource, index, children, systems)
            yield _reverse(found, resource, systems, settings)


def ref_key(reference: str | None) -> str | None:
    """``Type/id`` of a relative or absolute literal reference (``_history`` dropped)."""
    if not reference or reference.startswith(("urn:", "#")):
        return None
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def _index_page(page: Mapping[str, Any], systems: Systems) -> tuple[dict[str, Json], list[Json]]:
    index: dict[str, Json] = {}
    matches: list[Json] = []
    for entry in page.get("entry") or []:
        resource = entry.get("resource") or {}
        if not resource.get("id") or not resource.get("resourceType"):
            continue
        index[f"{resource['resourceType']}/{resource['id']}"] = resource
        mode = (entry.get("search") or {}).get("mode", "match")
        if mode == "match" and is_session_procedure(resource, systems):
            matches.append(resource)
    return index, matches


def _children(resources: Any) -> dict[str, list[Json]]:
    """Parent ``Procedure/id`` -> the Observations and Procedures that are ``partOf`` it."""
    out: dict[str, list[Json]] = {}
    for resource in resources:
        for part in resource.get("partOf") or []:
            parent = ref_key(part.get("reference"))
            if parent:
                out.setdefault(parent, []).append(resource)
    return out


def session_resources(
    procedure: Json, index: Mapping[str, Json], children: Mapping[str, list[Json]], systems: Systems
) -> list[Json]:
    """The IASTM Procedure and every resource of its record found in ``index``."""
    refs = [
        (procedure.get("encounter") or {}).get("reference"),
        (procedure.get("subject") or {}).get("reference"),
    ]
    refs += [r.get("reference") for r in procedure.get("reasonReference") or []]
    for performer in procedure.get("performer") or []:
        refs += [
            (performer.get("actor") or {}).get("reference"),
            (performer.get("onBehalfOf") or {}).get("reference"),
        ]
    encounter = index.get(ref_key(refs[0]) or "") or {}
    refs.append((encounter.get("serviceProvider") or {}).get("reference"))
    out, seen = [procedure], {f"Procedure/{procedure['id']}"}
    for key in (ref_key(r) for r in refs):
        if key and key not in seen and key in index:
            seen.add(key)
            out.append(index[key])
    version = source_version(procedure, systems)
    for child in children.get(f"Procedure/{procedure['id']}", []):
        key = f"{child['resourceType']}/{child['id']}"
        if key not in seen and source_version(child, systems) == version:
            seen.add(key)
            out.append(child)
    return out


def _reverse(
    resources: list[Json], procedure: Json, systems: Systems, settings: MappingSettings
) -> SessionRecord | PullError:
    session_id = next(
        (
            i.get("value")
            for i in procedure.get("identifier") or []
            if i.get("system") == systems.session
        ),
        None,
    )
    where = f"Procedure/{procedure.get('id')}"
    try:
        return from_fhir(resources, settings)
    except IastmError as exc:
        return PullError(session_id, where, tuple(exc.issues))
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # a malformed server resource
        issue = Issue(
            "error",
            "structure",
            where,
            f"cannot map back: {type(exc).__name__}: {exc}",
            "E_UNMAPPABLE",
        )
        return PullError(session_id, where, (issue,))


__all__ = ["PullError", "pull_query", "pull_records", "records_from_resources", "ref_key",
           "session_resources"]
