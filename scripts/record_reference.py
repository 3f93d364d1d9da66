#!/usr/bin/env python3
"""Rewrite the generated field reference of docs/record.md from the record's JSON Schema."""

from __future__ import annotations

from pathlib import Path

from fhir_iastm.records.reference import rewrite

DOC = Path(__file__).resolve().parent.parent / "docs" / "record.md"

if __name__ == "__main__":
    DOC.write_text(rewrite(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote {DOC}")
