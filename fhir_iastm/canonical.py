"""The canonical base of the project's URLs, and the one function that moves them to another base.

Every URL the project defines — profiles and extensions (``{base}/StructureDefinition/…``), code
systems, value sets, concept maps, identifier systems (``{base}/sid/…``) — lives under one base,
the setting ``IASTM_CANONICAL_BASE``. ``profiles/`` and ``fhir_iastm/data/codes.json`` are written
under :data:`DEFAULT_CANONICAL_BASE`; the mapper builds its URLs from the configured base, and the
profile index, ``$validate``, the facade's conformance resources and ``load-profiles`` read
``profiles/`` through :func:`rebase`, so every part speaks of the same URLs. External URLs (HL7,
mCODE, US Core, SNOMED CT, LOINC, …) are not under the base and are never touched.
See docs/canonical-base.md.
"""

from __future__ import annotations

from typing import Any, TypeVar

#: The placeholder base the project's files are written under (a clinic sets its own).
DEFAULT_CANONICAL_BASE = "https://iastm.example.org/fhir"

J = TypeVar("J")


def normalize_base(base: str | None) -> str:
    """The base without a trailing slash; empty or None means the default."""
    return (base or DEFAULT_CANONICAL_BASE).rstrip("/") or DEFAULT_CANONICAL_BASE


def rebase(value: J, base: str | None, source: str = DEFAULT_CANONICAL_BASE) -> J:
    """``value`` (JSON) with every project URL moved from ``source`` to ``base``.

    A string equal to ``source``, or containing ``source + "/"`` anywhere (a URL, or a URL quoted
    inside a FHIRPath invariant), has that base replaced. Pure: returns ``value`` itself when the
    bases are equal, else a new value (the input is never modified).
    """
    old, new = normalize_base(source), normalize_base(base)
    if old == new:
        return value
    return _rebase(value, old, new)  # type: ignore[no-any-return]


def _rebase(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        if value == old:
            return new
        return value.replace(old + "/", new + "/") if old in value else value
    if isinstance(value, dict):
        return {key: _rebase(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_rebase(item, old, new) for item in value]
    return value


__all__ = ["DEFAULT_CANONICAL_BASE", "normalize_base", "rebase"]
