"""The ICD-10-CM table of the configured FY — validity, billability, side and title.

The table ``data/icd10cm.txt.gz`` is derived from the pinned
simple-icd-10-cm package by scripts/derive_icd10cm.py (the package itself holds ~190 MB per
process); tests/records/test_icd10cm_table.py re-derives every line from the package. The side of
a billable code comes from its tabular title (docs/clinical.md, "Laterality"); the record rules
(``cross_field``) and the validator's laterality invariants both read it from here.
"""

from __future__ import annotations

import bisect
import functools
import gzip
from array import array
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import NamedTuple

#: Table letter -> the side the record uses (``unspecified``: the code leaves the side open).
SIDES = {"R": "right", "L": "left", "B": "bilateral", "U": "unspecified"}


class IcdEntry(NamedTuple):
    billable: bool
    side: str | None
    title: str | None


class IcdTable(Mapping[str, IcdEntry]):
    """Dotted code -> :class:`IcdEntry`, read from the table's lines, sorted by code, kept as one
    string (a lookup bisects it). A dict of its 98,000 entries held ~39 MB in every process that
    validates; this holds 6.8 MB (docs/performance.md#worker-memory)."""

    def __init__(self, text: str) -> None:
        """``text``: the lines, each ending with a newline."""
        self._text = text
        self._starts = array("I", [0])
        end = text.find("\n")
        while end + 1 < len(text):
            self._starts.append(end + 1)
            end = text.find("\n", end + 1)

    def _line(self, i: int) -> str:
        return self._text[self._starts[i]:self._text.index("\n", self._starts[i])]

    def _code(self, i: int) -> str:
        return self._text[self._starts[i]:self._text.index("\t", self._starts[i])]

    def __getitem__(self, code: str) -> IcdEntry:
        i = bisect.bisect_left(range(len(self._starts)), code, key=self._code)
        if i == len(self._starts) or self._code(i) != code:
            raise KeyError(code)
        return _entry(self._line(i))

    def __iter__(self) -> Iterator[str]:
        return (self._code(i) for i in range(len(self._starts)))

    def __len__(self) -> int:
        return len(self._starts)

    def items(self) -> Iterator[tuple[str, IcdEntry]]:  # type: ignore[override]
        """(code, entry) in code order, parsed once each."""
        for i in range(len(self._starts)):
            line = self._line(i)
            yield line.partition("\t")[0], _entry(line)


def _entry(line: str) -> IcdEntry:
    _, billable, side, title = line.split("\t")
    return IcdEntry(billable == "1", SIDES.get(side), title or None)


class _Billable(Mapping[str, bool]):
    """Dotted code -> billable leaf, a view of the table."""

    def __getitem__(self, code: str) -> bool:
        entry = lookup(code)
        if entry is None:
            raise KeyError(code)
        return entry.billable

    def __iter__(self) -> Iterator[str]:
        return iter(icd10cm_entries())

    def __len__(self) -> int:
        return len(icd10cm_entries())


@functools.cache
def icd10cm_entries() -> IcdTable:
    """Dotted ICD-10-CM code -> (billable leaf, side or None, tabular title of a billable code)."""
    packed = resources.files("fhir_iastm").joinpath("data/icd10cm.txt.gz").read_bytes()
    data = gzip.decompress(packed)
    return IcdTable(str(memoryview(data)[data.index(b"\n") + 1:], "utf-8"))  # after the header


@functools.lru_cache(maxsize=4096)
def lookup(code: str) -> IcdEntry | None:
    """The entry of a code, None if the table has none (the codes a clinic uses, cached)."""
    return icd10cm_entries().get(code)


@functools.cache
def icd10cm_table() -> Mapping[str, bool]:
    """Dotted ICD-10-CM code -> billable leaf."""
    return _Billable()


def icd_side(code: str) -> str | None:
    """right / left / bilateral / unspecified as the code's title states it; None: no side."""
    entry = lookup(code)
    return entry.side if entry else None


def icd_title(code: str) -> str | None:
    """The tabular title of a billable code (the coding's display), None for anything else."""
    entry = lookup(code)
    return entry.title if entry else None


@functools.cache
def codes_with_side(side: str) -> tuple[str, ...]:
    """Every billable code whose title states ``side``, sorted."""
    return tuple(c for c, e in icd10cm_entries().items() if e.billable and e.side == side)


__all__ = [
    "SIDES",
    "IcdEntry",
    "IcdTable",
    "codes_with_side",
    "icd10cm_entries",
    "icd10cm_table",
    "icd_side",
    "icd_title",
    "lookup",
]
