"""Derive fhir_iastm/data/icd10cm.txt.gz from the pinned simple-icd-10-cm package.

The package keeps the whole FY tabular in memory (~190 MB per process). fhir-iastm needs only
which dotted codes exist and which are billable leaves, so this script writes them once:
one line per code, ``<code>\\t<1 if billable leaf else 0>``, for every code that can pass the
record's ICD format (docs/decisions.md#d19; chapters and blocks cannot). tests/test_icd10cm_table.py
proves
the table answers exactly as the package does for every code.

    .venv/bin/python scripts/derive_icd10cm.py
"""

from __future__ import annotations

import gzip
import re
import warnings
from importlib.metadata import version
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fhir_iastm" / "data" / "icd10cm.txt.gz"
ICD_RE = re.compile(r"[A-TV-Z][0-9][0-9AB](\.[0-9A-Z]{1,4})?")


def main() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as icd

    lines = [f"# simple-icd-10-cm {version('simple-icd-10-cm')}: code<TAB>billable"]
    # the package lists a few codes twice; keep its order, once each
    for code in dict.fromkeys(icd.get_all_codes(with_dots=True)):
        if ICD_RE.fullmatch(code):
            lines.append(f"{code}\t{1 if icd.is_leaf(code) else 0}")
    # mtime=0: the same package gives a byte-identical file
    OUT.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    print(f"{OUT}: {len(lines) - 1} codes")  # noqa: T201


if __name__ == "__main__":
    main()
