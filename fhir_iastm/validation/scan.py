"""One generic walk over a resource dict collecting what profile-independent checks need.

Collects every extension (with its FHIRPath location), every Reference, every Coding and every
Period, in one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

#: Element names whose values are Codings (CodeableConcept.coding, valueCoding, Encounter.class,
#: meta.tag, meta.security).
_CODING_KEYS = frozenset({"coding", "valueCoding", "class", "tag", "security"})

#: value[x] keys whose type is Quantity or one of its R4 profiles (all carry qty-3).
_QUANTITY_KEYS = frozenset(
    {"valueQuantity", "valueDuration", "valueAge", "valueDistance", "valueCount"}
)


@dataclass(slots=True)
class Scan:
    """Locations of interest in one resource: (FHIRPath, value) pairs."""

    extensions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    references: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    codings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    periods: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    quantities: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def scan(resource: dict[str, Any]) -> Scan:
    """Walk the resource once (contained resources are not entered)."""
    out = Scan()
    _walk(resource, str(resource.get("resourceType", "Resource")), out)
    return out


def _walk(obj: dict[str, Any], path: str, out: Scan) -> None:
    for key, value in obj.items():
        if key == "contained" or key.startswith("_"):
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _visit(key, item, f"{path}.{key}[{i}]", out)
        elif isinstance(value, dict):
            _visit(key, value, f"{path}.{key}", out)


def _visit(key: str, item: dict[str, Any], path: str, out: Scan) -> None:
    classify(key, item, path, out)
    _walk(item, path, out)


def classify(key: str, item: dict[str, Any], path: str, out: Scan) -> None:
    """Note one object held under ``key`` at ``path`` (not what it holds)."""
    if key in ("extension", "modifierExtension"):
        out.extensions.append((path, item))
    elif key in _CODING_KEYS:
        out.codings.append((path, item))
    elif "reference" in item and isinstance(item["reference"], str):
        out.references.append((path, item))
    elif (key == "period" or key.endswith("Period")) and ("start" in item or "end" in item):
        out.periods.append((path, item))
    elif key in _QUANTITY_KEYS:
        out.quantities.append((path, item))


def to_utc(value: str) -> str | None:
    """An offset date-time as UTC with millisecond precision (``...T13:15:00.000Z``); else None.

    fhirpathpy compares date-times ignoring offsets and mis-orders seconds vs milliseconds
    precision, so every instant gets one zone and one precision before ordering invariants run.
    """
    moment = instant(value)
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def instant(value: Any) -> datetime | None:
    """A full date-time with seconds and zone as an aware datetime, else None."""
    if not isinstance(value, str):
        return None
    match = _DATETIME.match(value)
    if match is None:
        return None
    base, frac, zone = match.groups()
    text = base + (frac[:7] if frac else "") + ("+00:00" if zone == "Z" else zone)
    return datetime.fromisoformat(text)


def utc_copy(obj: Any) -> Any:
    """A copy with every offset date-time string rewritten to UTC; unchanged parts are shared."""
    if isinstance(obj, str):
        converted = to_utc(obj) if "T" in obj else None
        return obj if converted is None else converted
    if isinstance(obj, dict):
        new = {k: utc_copy(v) for k, v in obj.items()}
        return obj if all(new[k] is obj[k] for k in obj) else new
    if isinstance(obj, list):
        items = [utc_copy(v) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj, strict=True)) else items
    return obj


__all__ = ["Scan", "classify", "instant", "scan", "to_utc", "utc_copy"]
