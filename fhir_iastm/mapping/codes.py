"""The code tables of docs/codes.md, loaded once from ``fhir_iastm/data/codes.json``.

Every table is a plain dict ``internal value -> Coding`` (a :class:`CodeTable`, which is a ``dict``
that also knows its name and its fallback). A value missing from a table with fallback ``error``
raises :class:`MappingError` naming the table and the value; fallback ``omit`` yields no coding.
Reverse tables are derived from the forward ones (:func:`reverse`); intended many-to-one entries are
listed in the data file (``_many_to_one``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fhir_iastm.errors import Issue, MappingError
from fhir_iastm.records.vocab import ROM_MODES, TIMINGS, raw_codes

Coding = dict[str, str]

#: Standard terminology system URIs; an ``unverified`` code must never be emitted under them.
STANDARD_SYSTEMS = frozenset(
    {
        "http://snomed.info/sct",
        "http://loinc.org",
        "http://hl7.org/fhir/sid/icd-10-cm",
        "http://unitsofmeasure.org",
        "http://www.ama-assn.org/go/cpt",
    }
)

#: Record status -> (Encounter.status, Procedure.status, Observation.status);
#: docs/decisions.md#statuses.
STATUS = {
    "completed": ("finished", "completed", "final"),
    "entered-in-error": ("entered-in-error", "entered-in-error", "entered-in-error"),
    "cancelled": ("cancelled", "not-done", None),
}
#: Procedure.status -> record status (docs/decisions.md#round-trip); any other value is
#: E_CODE_UNKNOWN.
STATUS_FROM_PROCEDURE = {proc: status for status, (_, proc, _) in STATUS.items()}



class CodeTable(dict[str, tuple[Coding, ...]]):
    """A plain dict value -> codings that also carries its table name and fallback."""

    def __init__(self, name: str, fallback: str, entries: dict[str, tuple[Coding, ...]]) -> None:
        super().__init__(entries)
        self.name = name
        self.fallback = fallback

    def codings(self, value: str) -> list[Coding]:
        """Fresh copies of the codings for ``value`` (fallback applied)."""
        found = self.get(value)
        if found is None:
            if self.fallback == "omit":
                return []
            raise unmapped(self.name, value)
        return [dict(c) for c in found]

    def coding(self, value: str) -> Coding:
        """A fresh copy of the first (usually only) coding for ``value``."""
        found = self.get(value)
        if not found:  # missing (whatever the fallback) or empty: no coding to give
            raise unmapped(self.name, value)
        return dict(found[0])


def unmapped(table: str, value: object, where: str | None = None) -> MappingError:
    """The MappingError for a value that has no entry in ``table`` (``where``: FHIRPath)."""
    message = f"code table {table!r} has no entry for {value!r}"
    issue = Issue("error", "code-invalid", where, message, "E_CODE_UNKNOWN")
    return MappingError(message, [issue])


@dataclass(frozen=True)
class Tables:
    """All code tables for one canonical base."""

    by_name: dict[str, CodeTable]
    many_to_one: dict[str, dict[str, tuple[str, ...]]]

    def __getitem__(self, name: str) -> CodeTable:
        return self.by_name[name]

    def fixed(self, key: str) -> Coding:
        """One of the fixed codings (procedure code, categories, LOINC pain, ...)."""
        return self.by_name["fixed"].coding(key)


def _coding(entry: dict[str, Any], base: str) -> Coding:
    out = {"system": entry["system"].replace("{CANON}", base), "code": entry["code"]}
    if entry.get("display"):
        out["display"] = entry["display"]
    if entry.get("unit"):
        out["unit"] = entry["unit"]
    return out


def raw_data() -> dict[str, Any]:
    """The parsed terminology file (read once, by ``records.vocab``)."""
    return raw_codes()


@lru_cache(maxsize=8)
def tables(base: str) -> Tables:
    """The code tables with ``{CANON}`` replaced by ``base`` (cached per base)."""
    by_name: dict[str, CodeTable] = {}
    many: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, table in raw_data().items():
        if name.startswith("_") or name == "condition_snomed_by_icd_prefix":
            continue
        entries = {
            value: tuple(_coding(e, base) for e in (entry if isinstance(entry, list) else [entry]))
            for value, entry in table.items()
            if not value.startswith("_")
        }
        by_name[name] = CodeTable(name, table.get("_fallback", "error"), entries)
        many[name] = {k: tuple(v) for k, v in table.get("_many_to_one", {}).items()}
    return Tables(by_name, many)


def reverse(
    table: CodeTable, many_to_one: dict[str, tuple[str, ...]]
) -> dict[tuple[str, str], str]:
    """(system, code) -> value for the table's first codings; undeclared collisions raise."""
    out: dict[tuple[str, str], str] = {}
    for value, codings in table.items():
        key = (codings[0]["system"], codings[0]["code"])
        if key in out and value not in many_to_one.get(key[1], ()):
            raise ValueError(f"table {table.name!r}: {key} maps back to {out[key]!r} and {value!r}")
        out.setdefault(key, value)
    return out


@lru_cache(maxsize=64)
def reverse_table(base: str, name: str) -> dict[tuple[str, str], str]:
    """Cached reverse of one table for one canonical base."""
    t = tables(base)
    return reverse(t[name], t.many_to_one.get(name, {}))


def condition_snomed_display(code: str) -> str | None:
    """The display of a verified condition SNOMED code (docs/decisions.md#d19's pair table)."""
    for prefix, entry in raw_data()["condition_snomed_by_icd_prefix"].items():
        if not prefix.startswith("_") and entry["code"] == code:
            return str(entry["display"])
    return None


__all__ = [
    "ROM_MODES",
    "STANDARD_SYSTEMS",
    "STATUS",
    "STATUS_FROM_PROCEDURE",
    "TIMINGS",
    "CodeTable",
    "Coding",
    "Tables",
    "condition_snomed_display",
    "raw_data",
    "reverse",
    "reverse_table",
    "tables",
    "unmapped",
]
