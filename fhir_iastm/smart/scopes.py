"""SMART system scopes: v2 ``system/<Type|*>.<cruds>`` and their v1 ``.read`` / ``.write`` / ``.*``.

SMART App Launch 2.2.0 scopes-and-launch-context.md: a v2 permission string is a subset of
``cruds`` in that order (create, read, update, delete, search); v1 ``read`` means ``rs``,
``write`` ``cud`` and ``*`` all five. Granular scopes (``?param=value``) are not supported: they
are refused, never widened. Only ``system/`` scopes exist for a backend service.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PERMISSIONS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
#: Types a ``system/*`` scope does not reach: only a scope naming them grants them (the audit
#: trail is for administrators).
EXPLICIT_TYPES = frozenset({"AuditEvent"})
_SCOPE_RE = re.compile(r"system/(\*|[A-Z][A-Za-z]{1,63})\.([a-z*]+)")


class ScopeError(ValueError):
    """A scope string this server does not understand (``invalid_scope``)."""


@dataclass(frozen=True)
class Scope:
    """One system scope: a resource type (``*``: every type) and its permissions."""

    text: str
    resource_type: str
    permissions: frozenset[str]

    def covers(self, other: Scope) -> bool:
        """True when everything ``other`` permits, this scope permits too."""
        return (_reaches(self.resource_type, other.resource_type)
                and other.permissions <= self.permissions)


def _reaches(scope_type: str, resource_type: str) -> bool:
    return scope_type == resource_type or (scope_type == "*"
                                           and resource_type not in EXPLICIT_TYPES)


def _permissions(text: str) -> frozenset[str] | None:
    if text in _V1:
        return frozenset(_V1[text])
    # v2: each letter once, in the order c r u d s
    if text and all(ch in PERMISSIONS for ch in text) and \
            list(text) == sorted(set(text), key=PERMISSIONS.index):
        return frozenset(text)
    return None


def parse_scope(text: str) -> Scope:
    """One ``system/…`` scope, or ScopeError saying why it is not accepted."""
    match = _SCOPE_RE.fullmatch(text)
    if match is None:
        raise ScopeError(f"scope '{text}' is not a system/<Type|*>.<permissions> scope")
    perms = _permissions(match.group(2))
    if perms is None:
        raise ScopeError(f"scope '{text}': '{match.group(2)}' is not 'read', 'write', '*' or "
                         f"a subset of 'cruds' in that order")
    return Scope(text, match.group(1), perms)


def parse_scopes(text: str) -> list[Scope]:
    """A space-separated scope list (repeats dropped), or ScopeError for the first bad one."""
    seen: dict[str, Scope] = {}
    for word in text.split():
        if word not in seen:
            seen[word] = parse_scope(word)
    return list(seen.values())


def grant(requested: Iterable[Scope], registered: Iterable[Scope]) -> list[Scope]:
    """The requested scopes that a registered scope covers (the others are not granted)."""
    allowed = list(registered)
    return [s for s in requested if any(r.covers(s) for r in allowed)]


def allows(granted: Iterable[Scope], resource_type: str, permissions: str) -> bool:
    """True when the granted scopes together give every one of ``permissions`` on
    ``resource_type`` (``system/Patient.r system/Patient.s`` allows ``rs``)."""
    held: set[str] = set()
    for scope in granted:
        if _reaches(scope.resource_type, resource_type):
            held |= scope.permissions
    return set(permissions) <= held


def scope_text(scopes: Iterable[Scope]) -> str:
    """The space-separated form of scopes (the token response's ``scope``)."""
    return " ".join(s.text for s in scopes)


#: What a push does per resource type (docs/targets.md#authentication): conditional creates
#: and updates in one transaction (``cu``), identifier and encounter searches for the version
#: check and the retractions (``s``); the Provenance is written by ``PUT Provenance/{id}``.
PUSH_NEEDS = {t: "cus" for t in ("Patient", "Practitioner", "Organization", "Device",
                                 "Encounter", "Procedure", "Observation", "Condition")}
PUSH_NEEDS["Provenance"] = "cu"
#: What a pull reads: the Procedure search with its ``_include`` / ``_revinclude`` types.
PULL_NEEDS = {t: "rs" for t in ("Procedure", "Encounter", "Condition", "Observation", "Patient",
                                "Practitioner", "Organization")}

#: ``load-profiles``: conformance resources written by ``PUT Type/id``.
PROFILES_NEEDS = {t: "cu" for t in ("StructureDefinition", "ValueSet", "CodeSystem",
                                    "ConceptMap")}
#: ``sandbox-clean``: a tagged search and a delete per type the push writes.
CLEAN_NEEDS = {t: "ds" for t in PUSH_NEEDS}


def needed_scopes(needs: dict[str, str], *, v1: bool = False) -> str:
    """The narrowest scope text for ``needs`` (type -> v2 permissions): SMART v2
    ``system/Procedure.cus``, or with ``v1`` ``system/Procedure.write system/Procedure.read``."""
    words: list[str] = []
    for rtype, perms in sorted(needs.items()):
        if not v1:
            words.append(f"system/{rtype}.{perms}")
            continue
        if set(perms) & set("cud"):
            words.append(f"system/{rtype}.write")
        if set(perms) & set("rs"):
            words.append(f"system/{rtype}.read")
    return " ".join(words)


def lenient_scopes(text: str) -> list[Scope]:
    """The ``system/`` scopes of a granted scope text; words we do not read (``launch``,
    granular or ``user/`` scopes) grant nothing here and are skipped."""
    found = []
    for word in text.split():
        try:
            found.append(parse_scope(word))
        except ScopeError:
            continue
    return found


def missing_permissions(granted: Iterable[Scope], needs: dict[str, str]) -> list[str]:
    """``Type.perms`` for every need the granted scopes do not cover (empty: all covered)."""
    held = list(granted)
    return [f"{rtype}.{perms}" for rtype, perms in sorted(needs.items())
            if not allows(held, rtype, perms)]


__all__ = ["CLEAN_NEEDS", "EXPLICIT_TYPES", "PERMISSIONS", "PROFILES_NEEDS", "PULL_NEEDS",
           "PUSH_NEEDS", "Scope", "ScopeError", "allows", "grant", "lenient_scopes",
           "missing_permissions", "needed_scopes", "parse_scope", "parse_scopes", "scope_text"]
