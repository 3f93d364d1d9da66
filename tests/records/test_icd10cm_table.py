"""The derived ICD-10-CM table answers exactly as the pinned simple-icd-10-cm package does."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
import warnings
from importlib import resources
from importlib.metadata import version

import pytest

from fhir_iastm.records.checks import ICD_RE, icd10cm_table

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
