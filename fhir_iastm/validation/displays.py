"""Displays judged (docs/clinical.md#displays): an ICD-10-CM coding's ``display`` must be the
code's title in the pinned tabular, and a SNOMED CT coding of a code in the project's code table
may carry only the display the table sources (none where the table omits it, e.g. 18033002).

A wrong display is a **warning** (rule ``display:<system>``): the code, not the display, carries
the meaning (R4 Coding.display: "a representation of the meaning of the code"), and HAPI, which
does not hold either code system, does not judge these displays at all. Codes the tables do not
know are not judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from fhir_iastm.records.icd10cm import icd_title
from fhir_iastm.records.vocab import raw_codes
from fhir_iastm.validation.context import ValidationContext

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"


def _entries(node: Any) -> Iterator[dict[str, Any]]:
    """Every coding-like entry (a dict with ``system`` and ``code``) of the code table."""
    if isinstance(node, dict):
        if "system" in node and "code" in node:
            yield node
        for key, value in node.items():
            if not str(key).startswith("_"):
                yield from _entries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _entries(item)


@cache
def snomed_displays() -> dict[str, frozenset[str]]:
    """SNOMED CT code -> the displays the code table sources for it (empty: none sourced)."""
    out: dict[str, set[str]] = {}
    for entry in _entries(raw_codes()):
        if entry["system"] == SCT:
            shown = out.setdefault(str(entry["code"]), set())
            if isinstance(entry.get("display"), str):
                shown.add(entry["display"])
    return {code: frozenset(shown) for code, shown in out.items()}


def display_problem(system: Any, code: Any, display: Any) -> str | None:
    """Why ``display`` may not be sent for ``system#code`` (None: fine or not judged)."""
    if not isinstance(display, str) or not isinstance(code, str):
        return None
    if system == ICD:
        title = icd_title(code)
        if title is not None and display != title:
            return f"display {display!r} of ICD-10-CM {code} is not its tabular title {title!r}"
    elif system == SCT:
        sourced = snomed_displays().get(code)
        if sourced is not None and display not in sourced:
            if not sourced:
                return f"SNOMED CT {code} has no sourced display: send it without one"
            return f"display {display!r} of SNOMED CT {code} is not the sourced {sorted(sourced)}"
    return None


def check_displays(codings: list[tuple[str, dict[str, Any]]], ctx: ValidationContext) -> None:
    """A warning at each Coding whose display the tables contradict."""
    for path, coding in codings:
        system = coding.get("system")
        problem = display_problem(system, coding.get("code"), coding.get("display"))
        if problem is not None:
            ctx.add("warning", "code-invalid", f"{path}.display", problem, f"display:{system}")


__all__ = ["check_displays", "display_problem", "snomed_displays"]
