"""R4 rules beyond the definitions' regexes, checked during the R4 walk (``r4check``).

* **Codes of the core code systems** (docs/validation.md#core-codes): a ``Coding`` or
  ``Quantity`` whose ``system`` is a CodeSystem the R4 package defines completely
  (``content = complete``, the table's ``codesystems``) must carry a code of it — case-sensitive
  unless the CodeSystem says ``caseSensitive = false`` or does not say (then any case matches).
  Rule id ``codesystem:<system>``, as for the project's own CodeSystems.
* **URIs** (docs/validation.md#uris): a ``urn:uuid:`` in a ``uri``, ``url`` or ``canonical``
  is a lower-case UUID (the R4 ``uuid`` regex, which the ``uuid`` type has already); a
  ``canonical`` is absolute or a ``#fragment``. Rule ids ``uri:uuid``, ``uri:canonical``.

The walk asks ``CODED`` (per complex value) and ``URI_CHECKS`` (per primitive value that
``QUICK`` did not pass): one dict lookup each, nothing else on the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fhir_iastm.validation import r4defs as defs
from fhir_iastm.validation.context import ValidationContext

Error = Callable[[str, str, str, str], None]

_UUID_TEXT = str(defs.table()["primitives"]["uuid"])  # urn:uuid:[0-9a-f]{8}-…
_UUID = re.compile(_UUID_TEXT, re.ASCII)
#: RFC 3986 ``scheme ":" something`` (an absolute URI), or a ``#fragment``
_ABSOLUTE_OR_FRAGMENT = r"(?:#\S*|[A-Za-z][A-Za-z0-9+.-]*:\S+)"
_CANONICAL = re.compile(_ABSOLUTE_OR_FRAGMENT, re.ASCII)
#: a well-formed urn:uuid, or anything else that does not start with urn:uuid:
_URI_OK = f"(?:{_UUID_TEXT}|(?!urn:uuid:)\\S*)"
_ANY_URI = re.compile(_URI_OK, re.ASCII).fullmatch

#: the walk's quick pass per type: truthy when the value breaks no rule of this module nor the
#: spec's regex (``\S*`` for these three; ``uuid`` keeps its own regex)
QUICK: dict[str, Callable[[str], object]] = {
    "uri": _ANY_URI,
    "url": _ANY_URI,
    "canonical": re.compile(
        f"(?:{_UUID_TEXT}(?:\\|\\S*)?|(?!urn:uuid:){_ABSOLUTE_OR_FRAGMENT})", re.ASCII
    ).fullmatch,
}


def _load_code_sets() -> dict[str, tuple[bool, frozenset[str]]]:
    out = {}
    for url, (sensitive, codes) in defs.table()["codesystems"].items():
        exact = sensitive is True
        out[url] = (exact, frozenset(codes if exact else (c.lower() for c in codes)))
    return out


#: system URL -> (case-sensitive, codes; lower case when not) of the complete core systems
_CODE_SETS = _load_code_sets()


def code_sets() -> dict[str, tuple[bool, frozenset[str]]]:
    """system URL -> (case-sensitive, codes; lower case when not) of the complete core systems."""
    return _CODE_SETS


def known_code(system: str, code: str) -> bool | None:
    """True/False: ``code`` is / is not in the complete core CodeSystem ``system``; None: not
    such a system."""
    found = _CODE_SETS.get(system)
    if found is None:
        return None
    exact, codes = found
    return (code if exact else code.lower()) in codes


def report_unknown(ctx: ValidationContext, path: str, system: str, code: object) -> None:
    """The issue for a code a complete CodeSystem does not define."""
    ctx.add(
        "error",
        "code-invalid",
        path,
        f"unknown code {code!r} in CodeSystem {system}",
        f"codesystem:{system}",
    )


def check_coded(value: dict[str, Any], path: str, ctx: ValidationContext) -> None:
    """A Coding or Quantity: its code must be one of its system's, when that system is a
    complete core CodeSystem."""
    system = value.get("system")
    if not isinstance(system, str) or system not in _CODE_SETS:
        return  # most systems (SNOMED CT, LOINC, UCUM, …): one dict lookup
    code = value.get("code")
    if isinstance(code, str) and not known_code(system, code):
        report_unknown(ctx, f"{path}.code", system, code)


def _uuid_ok(text: str) -> bool:
    return not text.startswith("urn:uuid:") or _UUID.fullmatch(text) is not None


def check_uri(value: str, path: str, error: Error) -> None:
    """A ``uri`` / ``url`` value that names a UUID: lower case and well formed."""
    if not _uuid_ok(value):
        error("value", path, f"{value!r}: a urn:uuid must be a lower-case UUID", "uri:uuid")


def check_canonical(value: str, path: str, error: Error) -> None:
    """A ``canonical``: absolute or a ``#fragment``; a ``urn:uuid`` in lower case."""
    if not _CANONICAL.fullmatch(value):
        error(
            "value",
            path,
            f"{value!r}: a canonical URL must be absolute or a #fragment",
            "uri:canonical",
        )
    else:
        check_uri(value.split("|", 1)[0], path, error)


#: complex type -> its check (``Age``, ``Count``, ``Distance``, ``Duration`` are Quantities)
CODED: dict[str, Callable[[dict[str, Any], str, ValidationContext], None]] = {
    name: check_coded for name in ("Coding", "Quantity", "Age", "Count", "Distance", "Duration")
}
#: primitive type -> its check
URI_CHECKS: dict[str, Callable[[str, str, Error], None]] = {
    "uri": check_uri,
    "url": check_uri,
    "canonical": check_canonical,
}

__all__ = ["CODED", "QUICK", "URI_CHECKS", "code_sets", "known_code", "report_unknown"]
