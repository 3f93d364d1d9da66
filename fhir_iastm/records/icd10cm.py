"""The ICD-10-CM table of the configured FY — validity, billability, side and title.

The table ``data/icd10cm.txt.gz`` is derived from the pinned
simple-icd-10-cm package by scripts/derive_icd10cm.py (the package itself holds ~190 MB per
process); tests/records/test_icd10cm_table.py re-derives every line from the package. The side of
a billable code comes from its tabular title (docs/clinical.md, "Laterality"); the record rules
(``cross_field``) and the validator's laterality invariants both read it from here.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources
from typing import NamedTuple

#: Table letter -> the side the record uses (``unspecified``: the code leaves the side open).
SIDES = {"R": "right", "L": "left", "B": "bilateral", "U": "unspecified"}


class IcdEntry(NamedTuple):
    billable: bool
    side: str | None
    title: str | None


@functools.cache
def icd10cm_entries() -> dict[str, IcdEntry]:
    """Dotted ICD-10-CM code -> (billable leaf, side or None, tabular title of a billable code)."""
    data = resources.files("fhir_iastm").joinpath("data/icd10cm.txt.gz").read_bytes()
    table: dict[str, IcdEntry] = {}
    for line in gzip.decompress(data).decode().splitlines():
        if line and not line.startswith("#"):
            code, billable, side, title = line.split("\t")
            table[code] = IcdEntry(billable == "1", SIDES.get(side), title or None)
    return table


@functools.cache
def icd10cm_table() -> dict[str, bool]:
    """Dotted ICD-10-CM code -> billable leaf."""
    return {code: entry.billable for code, entry in icd10cm_entries().items()}


def icd_side(code: str) -> str | None:
    """right / left / bilateral / unspecified as the code's title states it; None: no side."""
    entry = icd10cm_entries().get(code)
    return entry.side if entry else None


def icd_title(code: str) -> str | None:
    """The tabular title of a billable code (the coding's display), None for anything else."""
    entry = icd10cm_entries().get(code)
    return entry.title if entry else None


@functools.cache
def codes_with_side(side: str) -> tuple[str, ...]:
    """Every billable code whose title states ``side``, sorted."""
    return tuple(sorted(c for c, e in icd10cm_entries().items() if e.billable and e.side == side))


__all__ = [
    "SIDES",
    "IcdEntry",
    "codes_with_side",
    "icd10cm_entries",
    "icd10cm_table",
    "icd_side",
    "icd_title",
]
