"""Every stable error/warning code the code base emits is defined in CodeSystem iastm-error-code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fhir_iastm.errors import ERROR_CODE_SYSTEM, Issue, operation_outcome

ROOT = Path(__file__).resolve().parent.parent
CODE_SYSTEM = json.loads((ROOT / "profiles" / "CodeSystem-iastm-error-code.json").read_text())


def emitted_codes() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "fhir_iastm").rglob("*.py"):
        found |= set(re.findall(r"[\"']([EW]_[A-Z][A-Z_]+)[\"']", path.read_text()))
    return found


def test_every_emitted_code_is_defined() -> None:
    defined = {c["code"] for c in CODE_SYSTEM["concept"]}
    assert CODE_SYSTEM["url"] == ERROR_CODE_SYSTEM
    missing = emitted_codes() - defined
    assert not missing, f"codes used in fhir_iastm/ but not in the CodeSystem: {sorted(missing)}"
    assert CODE_SYSTEM["count"] == len(defined)


def test_only_stable_codes_are_rendered_under_the_error_code_system() -> None:
    outcome = operation_outcome([
        Issue("error", "value", "pain.post", "too high", "E_RANGE"),
        Issue("error", "invariant", "Procedure", "bad", "iastm-proc-4"),
    ])
    first, second = outcome["issue"]
    assert first["details"]["coding"] == [{"system": ERROR_CODE_SYSTEM, "code": "E_RANGE"}]
    assert second["details"] == {"text": "iastm-proc-4"}
