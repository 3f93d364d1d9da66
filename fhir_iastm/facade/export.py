"""The ``$export`` kick-off parameters (Bulk Data Access IG 2.0.0 export.html#query-parameters).

:func:`parse_kickoff` takes the (name, value) pairs of a GET query or of a POST ``Parameters``
body and answers an :class:`ExportRequest`, or raises :class:`BulkError` (400) naming the
parameter. A parameter or value we do not support (an unknown parameter, an unknown ``_type``, an
``includeAssociatedData`` value other than ``LatestProvenanceResources`` and
``RelevantProvenanceResources``) is an error unless the client sent ``Prefer: handling=lenient``,
in which case it is ignored and reported in the export's ``error`` file. ``_typeFilter`` queries
are parsed by the facade's own search parser. docs/smart-bulk.md#provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fhir_iastm.errors import IastmError, Issue
from fhir_iastm.facade.params import RESOURCE_TYPES
from fhir_iastm.facade.parse import SearchError, parse_search
from fhir_iastm.storage.fhir_types import Condition

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
#: Resources shared between patients: exported once each, when referenced (patient, group).
SHARED_TYPES = ("Practitioner", "Organization")
#: Built from each session's stored record when exported (not a facade resource type).
PROVENANCE = "Provenance"
#: What an export may hold, in file order: the patient compartment, then shared resources.
EXPORT_TYPES = ("Patient", "Encounter", "Condition", "Procedure", "Observation", PROVENANCE,
                *SHARED_TYPES)
#: The session-owned types (a Provenance points to a session's resources of these types).
SESSION_TYPES = ("Encounter", "Condition", "Procedure", "Observation")
#: ``includeAssociatedData`` values we support: each session keeps one Provenance (the one of
#: its current record version), so the latest and the relevant Provenances are the same set.
ASSOCIATED = ("LatestProvenanceResources", "RelevantProvenanceResources")
LEVELS = ("system", "patient", "group")
_KNOWN = ("_outputFormat", "_since", "_type", "_typeFilter", "patient", "_elements",
          "includeAssociatedData")
assert set(EXPORT_TYPES) == {*RESOURCE_TYPES, PROVENANCE}


class BulkError(IastmError):
    """A kick-off the server will not run as asked (400)."""

    code = "E_BAD_REQUEST"
    http_status = 400
    issue_type = "invalid"

    def __init__(self, param: str, message: str) -> None:
        text = f"$export parameter '{param}': {message}"
        super().__init__(text, [Issue("error", "invalid", diagnostics=text, details=self.code)])
        self.param = param


@dataclass(frozen=True)
class ExportRequest:
    """A validated kick-off; ``to_params`` / ``from_params`` keep it in the job row as JSON."""

    level: str
    group: str | None = None
    types: tuple[str, ...] = EXPORT_TYPES
    since: datetime | None = None
    type_filters: tuple[str, ...] = ()
    patients: tuple[str, ...] | None = None
    elements: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())
    #: supported ``includeAssociatedData`` values asked for (see ``ASSOCIATED``)
    associated: tuple[str, ...] = ()

    @property
    def written_types(self) -> tuple[str, ...]:
        """The types the export writes: ``types``, plus Provenance when associated data is asked
        for (the Provenances of the sessions whose resources are exported)."""
        if not self.associated or PROVENANCE in self.types:
            return self.types
        return tuple(t for t in EXPORT_TYPES if t in self.types or t == PROVENANCE)

    def to_params(self) -> dict[str, Any]:
        return {"level": self.level, "group": self.group, "types": list(self.types),
                "since": self.since.isoformat() if self.since else None,
                "typeFilter": list(self.type_filters),
                "patient": list(self.patients) if self.patients is not None else None,
                "elements": list(self.elements), "ignored": list(self.ignored),
                "associated": list(self.associated)}

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> ExportRequest:
        return cls(p["level"], p.get("group"), tuple(p["types"]),
                   datetime.fromisoformat(p["since"]) if p.get("since") else None,
                   tuple(p.get("typeFilter") or ()),
                   tuple(p["patient"]) if p.get("patient") is not None else None,
                   tuple(p.get("elements") or ()), tuple(p.get("ignored") or ()),
                   tuple(p.get("associated") or ()))


def _since(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BulkError("_since", f"'{value}' is not a FHIR instant "
                        "(e.g. 2026-01-01T00:00:00Z)") from exc
    if when.tzinfo is None or "T" not in text:
        raise BulkError("_since", f"'{value}' needs a time and a time zone (a FHIR instant)")
    return when


def _codes(param: str, values: list[str], known: tuple[str, ...], lenient: bool,
           ignored: list[str], refusal: str) -> list[str]:
    """The known codes of comma-separated ``values``, once each; an unknown one raises a
    BulkError ("'code' ``refusal``"), or is ignored and reported when ``lenient``."""
    wanted: list[str] = []
    for name in (v.strip() for value in values for v in value.split(",")):
        if name in known:
            if name not in wanted:
                wanted.append(name)
        elif name:
            if not lenient:
                raise BulkError(param, f"'{name[:80]}' {refusal}")
            ignored.append(f"{param}={name[:80]}")
    return wanted


def _types(values: list[str], lenient: bool, ignored: list[str]) -> tuple[str, ...]:
    wanted = _codes("_type", values, EXPORT_TYPES, lenient, ignored, "is not exported by this "
                    f"server (it exports {', '.join(EXPORT_TYPES)})")
    if values and not wanted:
        raise BulkError("_type", "none of the requested types is exported by this server")
    return tuple(t for t in EXPORT_TYPES if t in wanted) if wanted else EXPORT_TYPES


def parse_type_filters(filters: tuple[str, ...], base_url: str, lenient: bool = True
                       ) -> dict[str, list[tuple[Condition, ...]]]:
    """``Type?query`` strings -> per type, the OR-ed list of AND-ed conditions."""
    out: dict[str, list[tuple[Condition, ...]]] = {}
    for raw in filters:
        rtype, sep, query = raw.partition("?")
        if not sep or rtype not in EXPORT_TYPES:
            raise BulkError("_typeFilter", f"'{raw[:80]}' is not Type?query of an exported type")
        if rtype == PROVENANCE:
            raise BulkError("_typeFilter", "Provenance is built from the stored records and "
                            "cannot be filtered; filter the resources it points to instead")
        args = parse_qsl(query, keep_blank_values=True)
        if not args:
            raise BulkError("_typeFilter", f"'{raw[:80]}' has no search parameter")
        for name, _ in args:
            if name.startswith("_") and name not in ("_id", "_lastUpdated"):
                raise BulkError("_typeFilter", f"'{name}' is not allowed in a type filter")
        try:
            parsed = parse_search(rtype, args, base_url)
        except SearchError as exc:
            raise BulkError("_typeFilter", str(exc)) from exc
        if parsed.ignored and not lenient:
            raise BulkError("_typeFilter", f"'{parsed.ignored[0]}' is not a supported search "
                            f"parameter of {rtype}")
        out.setdefault(rtype, []).append(parsed.query.conditions)
    return out


def _patients(values: list[str], level: str) -> tuple[str, ...] | None:
    if not values:
        return None
    if level == "system":
        raise BulkError("patient", "is only allowed at Patient and Group level")
    ids = []
    for value in values:
        rtype, _, rid = value.partition("/")
        if rtype != "Patient" or not rid or "/" in rid:
            raise BulkError("patient", f"'{value[:80]}' is not a Patient/<id> reference")
        ids.append(rid)
    return tuple(dict.fromkeys(ids))


def parse_kickoff(level: str, pairs: list[tuple[str, str]], *, lenient: bool, base_url: str,
                  group: str | None = None, posted: bool = False) -> ExportRequest:
    """Validate a kick-off's parameters (see the module doc)."""
    values: dict[str, list[str]] = {}
    ignored: list[str] = []
    for name, value in pairs:
        if name in _KNOWN:
            values.setdefault(name, []).append(value)
        elif not lenient:
            raise BulkError(name, "is not a supported $export parameter")
        else:
            ignored.append(name)
    for fmt in values.get("_outputFormat", []):
        if fmt not in OUTPUT_FORMATS:
            raise BulkError("_outputFormat", f"'{fmt[:80]}' is not supported; use "
                            f"{' or '.join(OUTPUT_FORMATS)}")
    associated = _associated(values.get("includeAssociatedData", []), lenient, ignored)
    if values.get("patient") and not posted:
        raise BulkError("patient", "is only accepted in a POST kick-off (a Parameters body)")
    since = [_since(v) for v in values.get("_since", [])]
    types = _types(values.get("_type", []), lenient, ignored)
    filters = tuple(values.get("_typeFilter", []))
    parse_type_filters(filters, base_url, lenient)  # every filter must parse now
    elements = tuple(e.strip() for v in values.get("_elements", []) for e in v.split(",")
                     if e.strip())
    return ExportRequest(level, group, types, since[-1] if since else None, filters,
                         _patients(values.get("patient", []), level), elements, tuple(ignored),
                         associated)


def _associated(values: list[str], lenient: bool, ignored: list[str]) -> tuple[str, ...]:
    """Supported ``includeAssociatedData`` values (comma-separated codes)."""
    return tuple(_codes("includeAssociatedData", values, ASSOCIATED, lenient, ignored,
                        f"is not supported; use {' or '.join(ASSOCIATED)}"))


def parameters_pairs(body: Any) -> list[tuple[str, str]]:
    """The (name, value) pairs of a POST kick-off's ``Parameters`` body."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BulkError("body", "a POST kick-off carries a Parameters resource")
    pairs = []
    for number, param in enumerate(body.get("parameter") or []):
        name = param.get("name") if isinstance(param, dict) else None
        value = None
        for key in ("valueString", "valueInstant", "valueCode", "valueUri"):
            if isinstance(param.get(key), str):
                value = param[key]
        if isinstance(param.get("valueReference"), dict):
            value = param["valueReference"].get("reference")
        if not isinstance(name, str) or not isinstance(value, str):
            raise BulkError(f"parameter[{number}]", "needs a name and a string, instant, code "
                            "or reference value")
        pairs.append((name, value))
    return pairs


__all__ = ["ASSOCIATED", "EXPORT_TYPES", "LEVELS", "OUTPUT_FORMATS", "PROVENANCE",
           "SESSION_TYPES", "SHARED_TYPES", "BulkError", "ExportRequest", "parameters_pairs",
           "parse_kickoff", "parse_type_filters"]
