"""The per-resource validation context (index, issue sink, Bundle resolver).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fhir_iastm.errors import Issue
from fhir_iastm.profiles import ProfileIndex

Resolver = Callable[[str], dict[str, Any] | None]
#: (resource, issue expression, rule id) -> the internal-record field behind the issue, or None.
#: Injected by callers that know the resource was mapped by us (docs/validation.md#tracing).
Tracer = Callable[[dict[str, Any], str | None, str | None], str | None]


@dataclass(slots=True)
class ValidationContext:
    """Where issues go; paths are relative to the resource (``Procedure.bodySite[0]``) and get
    their Bundle prefix later (``locate``)."""

    index: ProfileIndex
    prefix: str = ""
    resolve: Resolver | None = None
    #: the resource being validated (``%resource`` for element-level invariants)
    root: dict[str, Any] | None = None
    issues: list[Issue] = field(default_factory=list)

    def add(self, severity: str, code: str, path: str, diagnostics: str, rule: str) -> None:
        """Record one issue at ``path`` (relative to the resource)."""
        self.issues.append(Issue(severity, code, path, diagnostics, rule))


def claimed_profiles(resource: dict[str, Any]) -> list[str]:
    """The string entries of ``meta.profile`` (tolerating any malformed shape)."""
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    return [p for p in profiles if isinstance(p, str)] if isinstance(profiles, list) else []


def locate(prefix: str, path: str | None) -> str | None:
    """Prefix + ``Procedure.bodySite[0]`` -> ``Bundle.entry[3].resource.bodySite[0]``."""
    if not prefix or path is None:
        return path
    head, dot, tail = path.partition(".")
    if head[:1].isupper() and "[" not in head:
        return prefix + tail if dot else prefix.rstrip(".")
    return prefix + path


__all__ = ["ValidationContext", "Resolver", "Tracer", "claimed_profiles", "locate"]
