#!/usr/bin/env python3
"""Write docs/mapping.md from the element table (fhir_iastm/mapping/elements.py).

    .venv/bin/python scripts/gen_docs.py          # rewrite docs/mapping.md
    .venv/bin/python scripts/gen_docs.py --check  # exit 1 if docs/mapping.md is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from fhir_iastm.mapping.elements_doc import render

TARGET = Path(__file__).resolve().parent.parent / "docs" / "mapping.md"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run scripts/gen_docs.py", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
