"""The record contract as a JSON Schema (draft 2020-12), generated from the marshmallow
schemas (``records.schemas``), their fields (``records.fields``) and checks (``records.checks``).

Every property is typed; required lists, lengths, patterns, ranges and the closed code lists
(``records.vocab``, read from the code tables) are those the fields declare; descriptions come
from ``records.descriptions``. Served at ``GET /api/record.schema.json``, printed by
``fhir-iastm schema``, used by ``/openapi.json``, and the source of ``docs/record.md``.

The schema checks each field on its own. Rules that read several fields (``records.cross_field``:
statuses, session end and duration, laterality against the ICD-10-CM code, uniqueness, …) and the
ICD-10-CM code table are checked by the service only: a record valid against the schema may still
be refused, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields

from fhir_iastm.records import checks, vocab
from fhir_iastm.records.descriptions import FIELDS, OBJECTS
from fhir_iastm.records.fields import Array, Bool, Code, Int, Number, Text
from fhir_iastm.records.schemas import SessionRecordSchema

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ROOT = "SessionRecord"
#: Where nested objects are defined: inside the schema, or among OpenAPI components.
DEFS_REF = "#/$defs/"
OPENAPI_REF = "#/components/schemas/"


def _anchored(regex: str) -> str:
    """A JSON Schema ``pattern`` matches anywhere: anchor it to mean Python's ``fullmatch``."""
    return f"^(?:{regex})$"


#: Checks of a Text field -> what they add to its schema.
_CHECKS: dict[Callable[[str], None], dict[str, Any]] = {
    checks.check_datetime: {
        "format": "date-time", "pattern": _anchored(checks.DATETIME_RE.pattern)},
    checks.check_date: {"format": "date", "pattern": _anchored(checks.DATE_RE.pattern)},
    checks.check_partial_date: {"pattern": _anchored(checks.PARTIAL_DATE_RE.pattern)},
    checks.check_npi: {"pattern": _anchored(checks.NPI_RE.pattern)},
    checks.check_icd10cm: {"pattern": _anchored(checks.ICD_RE.pattern)},
    checks.check_usps: {"enum": list(checks.USPS_STATE_CODES)},
    checks.check_snomed: {"enum": list(vocab.VERIFIED_CONDITION_SNOMED)},
    checks.check_schema_version: {"enum": list(vocab.SCHEMA_VERSIONS)},
}


def _text(field: Text) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": field.max_len}
    if isinstance(field, Code):
        return {"type": "string", "enum": list(field.allowed)}
    if isinstance(field.check, checks.PatternCheck):
        out["pattern"] = _anchored(field.check.regex.pattern)
    elif field.check is not None:
        out.update(_CHECKS[field.check])
    else:
        out["pattern"] = r"\S"  # not blank
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field may also be sent as null (it then counts as absent)."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema, type=[schema["type"], "null"])
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def field_schema(field: fields.Field, ref: str) -> dict[str, Any]:
    """The JSON Schema of one marshmallow field of the record."""
    schema: dict[str, Any]
    if isinstance(field, Text):
        schema = _text(field)
    elif isinstance(field, Int):
        schema = {"type": "integer", "maximum": field.maximum}
        if field.minimum is not None:
            schema = {"type": "integer", "minimum": field.minimum, "maximum": field.maximum}
    elif isinstance(field, Number):
        schema = {"type": "number", "minimum": field.minimum, "maximum": field.maximum}
    elif isinstance(field, Bool):
        schema = {"type": "boolean"}
    elif isinstance(field, Array):
        schema = {"type": "array", "items": field_schema(field.inner, ref)}
        if field.min_items:
            schema["minItems"] = field.min_items
        schema["maxItems"] = field.max_items
    elif isinstance(field, fields.Nested):
        schema = {"$ref": ref + object_name(field.schema)}
    else:
        raise TypeError(f"no JSON Schema for {type(field).__name__}")
    return _nullable(schema) if field.allow_none else schema


def object_name(schema: Schema) -> str:
    """``PatientSchema`` -> ``Patient``."""
    return type(schema).__name__.removesuffix("Schema")


def object_schema(schema: Schema, ref: str) -> dict[str, Any]:
    """The JSON Schema of one record object (no unknown properties)."""
    name = object_name(schema)
    properties = {}
    for key, field in schema.fields.items():
        properties[key] = {"description": FIELDS[name][key], **field_schema(field, ref)}
    out: dict[str, Any] = {"type": "object", "description": OBJECTS[name]}
    required = [key for key, field in schema.fields.items() if field.required]
    if required:
        out["required"] = required
    out["properties"] = properties
    out["additionalProperties"] = False
    return out


def nested_schemas(schema: Schema) -> dict[str, Schema]:
    """Every object schema reachable from ``schema`` (itself first), by name."""
    found: dict[str, Schema] = {}
    pending = [schema]
    while pending:
        current = pending.pop(0)
        if object_name(current) in found:
            continue
        found[object_name(current)] = current
        for field in current.fields.values():
            inner = field.inner if isinstance(field, fields.List) else field
            if isinstance(inner, fields.Nested):
                pending.append(inner.schema)
    return found


def definitions(ref: str = OPENAPI_REF) -> dict[str, dict[str, Any]]:
    """Name -> JSON Schema of every record object, ``$ref``s under ``ref`` (OpenAPI components)."""
    objects = nested_schemas(SessionRecordSchema())
    return {name: object_schema(schema, ref) for name, schema in objects.items()}


def record_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the internal session record, schema_version 1.0."""
    defs = definitions(DEFS_REF)
    root = defs.pop(ROOT)
    return {"$schema": DIALECT, "title": "IASTM session record (schema_version 1.0)", **root,
            "$defs": defs}


__all__ = [
    "DEFS_REF",
    "DIALECT",
    "OPENAPI_REF",
    "ROOT",
    "definitions",
    "field_schema",
    "nested_schemas",
    "object_schema",
    "record_json_schema",
]
