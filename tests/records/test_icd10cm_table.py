"""The derived ICD-10-CM table answers exactly as the pinned simple-icd-10-cm package does."""

from __future__ import annotations

import gzip
import importlib.util
import re
import subprocess
import sys
import warnings
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import pytest

from fhir_iastm.records.checks import ICD_RE
from fhir_iastm.records.icd10cm import SIDES, icd10cm_entries, icd10cm_table, icd_side, icd_title

_SPEC = importlib.util.spec_from_file_location(
    "derive_icd10cm", Path(__file__).resolve().parents[2] / "scripts" / "derive_icd10cm.py"
)
assert _SPEC is not None
assert _SPEC.loader is not None
derive = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(derive)

with warnings.catch_warnings():
    # simple-icd-10-cm 1.5.0 loads its data with the deprecated importlib.resources.read_text.
    warnings.simplefilter("ignore", DeprecationWarning)
    import simple_icd_10_cm as icd


def test_table_was_derived_from_the_pinned_package() -> None:
    raw = resources.files("fhir_iastm").joinpath("data/icd10cm.txt.gz").read_bytes()
    header = gzip.decompress(raw).decode().splitlines()[0]
    assert header.startswith(f"# simple-icd-10-cm {version('simple-icd-10-cm')}:")


def test_every_package_code_has_the_same_validity_and_billability() -> None:
    table = icd10cm_table()
    formatted = {c for c in icd.get_all_codes(with_dots=True) if ICD_RE.fullmatch(c)}
    assert len(table) == len(formatted) > 90_000
    for code in formatted:
        assert table[code] is icd.is_leaf(code), code


@pytest.mark.parametrize(
    ("code", "expected"),
    [("M77.11", True), ("M77.1", False), ("M72.2", True), ("S76.311D", True), ("T84.84XD", True),
     ("Z96.651", True), ("G89.28", True), ("M77.19", None), ("Q99.999", None)],
)
def test_known_codes(code: str, expected: bool | None) -> None:
    assert icd10cm_table().get(code) is expected
    assert icd.is_valid_item(code) is (expected is not None)


def test_the_core_no_longer_loads_the_package() -> None:
    probe = "import sys, fhir_iastm.records; print('simple_icd_10_cm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_format_regex_is_the_records_one() -> None:
    assert ICD_RE.pattern == re.compile(r"[A-TV-Z][0-9][0-9AB](\.[0-9A-Z]{1,4})?").pattern


def test_every_line_is_what_the_package_derives() -> None:
    """Billability, side and title of every code, re-derived from the package's tabular."""
    raw = resources.files("fhir_iastm").joinpath("data/icd10cm.txt.gz").read_bytes()
    assert gzip.decompress(raw).decode().splitlines() == derive.table_lines()


def test_every_title_is_the_package_description() -> None:
    for code, entry in icd10cm_entries().items():
        if entry.billable:
            assert entry.title == " ".join(icd.get_description(code).split()), code
        else:
            assert (entry.title, entry.side) == (None, None), code


def test_every_title_naming_a_side_has_one() -> None:
    """28,062 billable titles name right/left/bilateral; all but the non-paired anatomy
    (heart chambers, left colon, "left in body") get a side."""
    named = [
        c for c, e in icd10cm_entries().items()
        if e.billable and re.search(r"\b(right|left|bilateral)\b", e.title or "", re.I)
    ]
    assert len(named) == 28_062
    sideless = {c for c in named if icd_side(c) is None}
    assert all(derive.NOT_A_SIDE.search(icd_title(c) or "") for c in sideless)
    assert len(sideless) < 250


@pytest.mark.parametrize(
    ("code", "side"),
    [("M76.61", "right"), ("M76.62", "left"), ("M76.60", "unspecified"), ("M79.672", "left"),
     ("M79.671", "right"), ("M79.673", "unspecified"), ("M25.551", "right"), ("M25.552", "left"),
     ("M25.559", "unspecified"), ("M25.661", "right"), ("M76.31", "right"), ("M70.61", "right"),
     ("S76.111A", "right"), ("S86.011A", "right"), ("S76.119A", "unspecified"),
     ("M17.0", "bilateral"), ("M17.11", "right"), ("Z96.653", "bilateral"),
     ("Z96.649", "unspecified"), ("M72.2", None), ("G89.28", None), ("M25.50", None),
     ("I50.1", None), ("I50.814", None), ("K51.50", None), ("T81.500A", None),
     ("H54.61", "right"), ("H54.0X33", "bilateral"), ("S02.650A", "unspecified")],
)  # fmt: skip
def test_known_sides(code: str, side: str | None) -> None:
    assert icd_side(code) == side


def test_displays_come_from_the_tabular() -> None:
    assert icd_title("M76.61") == "Achilles tendinitis, right leg"
    assert icd_title("M77.1") is None


def test_the_sorted_string_table_finds_every_line_and_nothing_else() -> None:
    """``IcdTable`` bisects the lines of one string (docs/performance.md#worker-memory): every
    line of the file is found by its code, and codes before the first, after the last and
    between two lines are absent."""
    raw = resources.files("fhir_iastm").joinpath("data/icd10cm.txt.gz").read_bytes()
    lines = gzip.decompress(raw).decode().splitlines()[1:]
    table = icd10cm_entries()
    assert len(table) == len(lines)
    assert list(table) == sorted(line.split("\t")[0] for line in lines)
    for line in lines:
        code, billable, side, title = line.split("\t")
        entry = table[code]
        assert (entry.billable, entry.side, entry.title) == (
            billable == "1", SIDES.get(side), title or None), code
    first, last = lines[0].split("\t")[0], lines[-1].split("\t")[0]
    for absent in ("", first[:-1], "M77.111", "M77.10X", last + "9", "ZZZ"):
        assert absent not in table, absent
        assert table.get(absent) is None
        assert icd10cm_table().get(absent) is None
        with pytest.raises(KeyError):
            icd10cm_table()[absent]
