"""Render the element table (``mapping.elements``) as docs/mapping.md.

``scripts/gen_docs.py`` writes the file; a test fails when the committed file differs from
:func:`render`.
"""

from __future__ import annotations

import re

from fhir_iastm.mapping.elements import KINDS, Element, rows_of

HEADER = """\
# The mapping, element by element

<!-- Generated from fhir_iastm/mapping/elements.py by scripts/gen_docs.py: do not edit by hand. -->

One row per FHIR element the mapper emits, grouped by the kind of resource (each kind has its own
profile in `profiles/`). The same table drives the validator's tracing of an issue back to the
record field to fix ([validation.md](validation.md#tracing)); a test proves that every element of
the golden Bundles and of the mapped examples has a row, and that every row is emitted.

How to read it:

- **element**: the FHIR path from the resource, without indices. A repeating `extension` is named
  by the last segment of its URL (`extension:mcode-laterality-qualifier`); a resource-level
  `identifier` and any `coding` by their system (`sct` = SNOMED CT, `loinc` = LOINC, `cpt` = CPT,
  otherwise the last segment of the system URI). A row covers the element and everything below it
  that has no row of its own.
- **record field**: where the value comes from, written as in the record. `[]` is one element of
  an array: for the kind's own array (`conditions[]`) the one this resource was made from; for
  `treatment_sites[]`, `adverse_effects[]`, `instruments[]` and `items[]` the one at the same
  position. `{timing}` is `pre` or `post`; `{when}` is `start` for pre and `end` for post. Empty:
  a constant, or a value derived from the settings.
- **code table**: the table of `fhir_iastm/data/codes.json` the codes come from
  ([codes.md](codes.md)).
- **reverse**: how `fhir-iastm unmap` / `pull` read the element back
  ([what "lossless" means](decisions.md#round-trip)).

Business identifiers and write semantics are in [decisions.md](decisions.md#identifiers).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else ""


def _row(element: Element) -> str:
    record = ", ".join(f"`{r}`" for r in element.record)
    table = ", ".join(f"`{t.strip()}`" for t in element.table.split(",")) if element.table else ""
    path = f"`{element.path}`"
    if element.invariants:
        path += " (" + ", ".join(f"`{i}`" for i in element.invariants) + ")"
    return f"| {path} | {_cell(record)} | {_cell(table)} | {_cell(element.reverse)} |"


def _role(pattern: str) -> str:
    """``condition/(?P<cid>.+)$`` -> ``condition/{cid}``."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).rstrip("$")


def render() -> str:
    """The whole of docs/mapping.md."""
    out = [HEADER]
    out.append("Contents: " + " · ".join(f"[{k.title}](#{k.name})" for k in KINDS) + ".\n")
    for kind in KINDS:
        out.append(f'<a id="{kind.name}"></a>')
        out.append(f"## {kind.title}\n")
        how = (
            f"identified by `{{session_id}}/{_role(kind.role)}` in its `iastm-session-resource` "
            "identifier"
            if kind.role
            else "a shared resource (`POST` + `ifNoneExist`, [D5](decisions.md#d5))"
        )
        out.append(
            f"`{kind.resource_type}`, profile `{{CANON}}/StructureDefinition/{kind.profile}`; "
            f"{how}; the record field of the whole resource: `{kind.record}`.\n"
        )
        out.append("| element (invariants) | record field | code table | reverse |")
        out.append("|---|---|---|---|")
        out.extend(_row(e) for e in rows_of(kind.name))
        out.append("")
    return "\n".join(out)


__all__ = ["render"]
