"""The field reference of ``docs/record.md``, rendered from the record's JSON Schema
(``records.contract``). ``tests/records/test_contract.py`` fails when the file is stale; rewrite
its generated block with ``scripts/record_reference.py``.
"""

from __future__ import annotations

from typing import Any

from fhir_iastm.records.contract import record_json_schema
from fhir_iastm.records.fields import INT_MAX

BEGIN = "<!-- BEGIN GENERATED: field reference (scripts/record_reference.py) -->"
END = "<!-- END GENERATED: field reference -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _nonnull(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of a nullable property without its ``null`` alternative."""
    if "anyOf" in schema:
        return next(s for s in schema["anyOf"] if s.get("type") != "null")
    if isinstance(schema.get("type"), list):
        kind = next(t for t in schema["type"] if t != "null")
        out = dict(schema, type=kind)
        if "enum" in out:
            out["enum"] = [v for v in out["enum"] if v is not None]
        return out
    return schema


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if schema["type"] == "array":
        return f"array of {_type(_nonnull(schema['items']))}"
    return str(schema["type"])


def _allowed(schema: dict[str, Any]) -> str:
    if schema.get("type") == "array":
        bounds = f"{schema.get('minItems', 0)}–{schema['maxItems']} items"
        inner = _allowed(_nonnull(schema["items"]))
        return f"{bounds}; {inner}" if inner else bounds
    parts = []
    if "enum" in schema:
        parts.append(" | ".join(f"`{v}`" for v in schema["enum"]))
    elif schema.get("pattern", r"\S") != r"\S":
        regex = schema["pattern"].removeprefix("^(?:").removesuffix(")$")
        parts.append(f"matches `{regex}`")
    if "format" in schema:
        parts.append(f"format `{schema['format']}`")
    if "maxLength" in schema and "enum" not in schema:
        parts.append(f"1–{schema['maxLength']} characters")
    if "minimum" in schema and schema.get("maximum") == INT_MAX:
        parts.append(f"≥ {schema['minimum']}")
    elif "minimum" in schema:
        parts.append(f"{schema['minimum']:g}–{schema['maximum']:g}")
    return "; ".join(parts)


def object_table(name: str, schema: dict[str, Any]) -> list[str]:
    """The heading and table of one record object."""
    lines = [f"### {name}", "", schema["description"], "",
             "| field | type | required | allowed values | meaning |", "|---|---|---|---|---|"]
    required = set(schema.get("required", []))
    for key, prop in schema["properties"].items():
        plain = _nonnull(prop)
        need = "yes" if key in required else "no (may be null)"
        lines.append(f"| `{key}` | {_type(plain)} | {need} | {_cell(_allowed(plain))} | "
                     f"{_cell(prop['description'])} |")
    return [*lines, ""]


def field_reference() -> str:
    """The generated block of ``docs/record.md``: one table per record object."""
    schema = record_json_schema()
    root = {k: v for k, v in schema.items() if k != "$defs"}
    lines = [BEGIN, ""]
    for name, definition in [("SessionRecord", root), *schema["$defs"].items()]:
        lines.extend(object_table(name, definition))
    return "\n".join([*lines, END])


def rewrite(text: str) -> str:
    """``text`` with its generated block replaced by the current one."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + field_reference() + tail


__all__ = ["BEGIN", "END", "field_reference", "object_table", "rewrite"]
