"""A server's CapabilityStatement, read for what the push and pull code needs to decide.

``client.FhirClient.capabilities()`` builds it from
``GET /metadata``. Which fallbacks to take is the push code's decision (docs/push.md#capabilities,
docs/decisions.md#d13).
Spec: https://hl7.org/fhir/R4/capabilitystatement.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Capabilities"]


@dataclass(frozen=True)
class Capabilities:
    """Read-only view of the first ``rest`` entry with ``mode = server``.

    The boolean flags of a resource (``conditionalUpdate``, ``conditionalCreate``,
    ``updateCreate``) are tri-state: True / False as declared, None when the server is silent.
    """

    statement: Mapping[str, Any]
    _rest: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rests = [r for r in self.statement.get("rest") or [] if isinstance(r, dict)]
        server = [r for r in rests if r.get("mode") == "server"]
        object.__setattr__(self, "_rest", (server or rests or [{}])[0])

    @property
    def fhir_version(self) -> str | None:
        """``CapabilityStatement.fhirVersion`` (e.g. ``4.0.1``)."""
        version = self.statement.get("fhirVersion")
        return version if isinstance(version, str) else None

    @property
    def software(self) -> str | None:
        """``software.name`` and ``software.version`` (e.g. ``HAPI FHIR Server 8.8.0``)."""
        software = self.statement.get("software") or {}
        parts = [software.get(k) for k in ("name", "version") if isinstance(software, dict)]
        text = " ".join(p for p in parts if isinstance(p, str) and p)
        return text or None

    def versioning(self, resource_type: str) -> str | None:
        """``versioning`` of the type: ``no-version`` / ``versioned`` / ``versioned-update``
        (the last one: updates are checked against ``If-Match``); None when not declared."""
        value = self._resource(resource_type).get("versioning")
        return value if isinstance(value, str) else None

    def operations(self) -> frozenset[str]:
        """Operation names declared at system level or on any type (``validate``, ...)."""
        declared = list(self._rest.get("operation") or [])
        for resource in self._resources():
            declared += list(resource.get("operation") or [])
        return frozenset(str(o["name"]) for o in declared if isinstance(o, dict) and o.get("name"))

    def includes(self, resource_type: str) -> frozenset[str]:
        """``searchInclude`` values of the type (``*`` means any)."""
        return frozenset(str(v) for v in self._resource(resource_type).get("searchInclude") or [])

    def revincludes(self, resource_type: str) -> frozenset[str]:
        """``searchRevInclude`` values of the type (``*`` means any)."""
        values = self._resource(resource_type).get("searchRevInclude") or []
        return frozenset(str(v) for v in values)

    @property
    def supports_transaction(self) -> bool:
        """System interaction ``transaction`` is declared."""
        return "transaction" in _codes(self._rest.get("interaction"))

    def resource_types(self) -> frozenset[str]:
        """Every resource type the server declares."""
        return frozenset(str(r.get("type")) for r in self._resources() if r.get("type"))

    def interactions(self, resource_type: str) -> frozenset[str]:
        """Type-level and instance-level interaction codes (``read``, ``update``, ...)."""
        return _codes(self._resource(resource_type).get("interaction"))

    def conditional_update(self, resource_type: str) -> bool | None:
        """``conditionalUpdate`` for the type (``PUT Type?identifier=``); None when not declared."""
        return self._flag(resource_type, "conditionalUpdate")

    def conditional_create(self, resource_type: str) -> bool | None:
        """``conditionalCreate`` for the type (``ifNoneExist``); None when not declared."""
        return self._flag(resource_type, "conditionalCreate")

    def update_create(self, resource_type: str) -> bool | None:
        """``updateCreate``: may a client-assigned ``PUT Type/id`` create? None when not declared.

        HAPI 8.8 declares no ``updateCreate`` at all, yet creates on ``PUT Type/id`` (tested), so
        callers should treat None as "unknown, try it" and only False as "no".
        """
        return self._flag(resource_type, "updateCreate")

    def search_params(self, resource_type: str) -> frozenset[str]:
        """Search parameter names for the type, plus those declared for all types."""
        declared = list(self._resource(resource_type).get("searchParam") or [])
        declared += list(self._rest.get("searchParam") or [])
        return frozenset(str(p["name"]) for p in declared if isinstance(p, dict) and p.get("name"))

    def supports_include(self, resource_type: str) -> bool:
        """The type declares ``searchInclude`` values."""
        return bool(self._resource(resource_type).get("searchInclude"))

    def supports_revinclude(self, resource_type: str) -> bool:
        """The type declares ``searchRevInclude`` values (needed by the decision-11 pull)."""
        return bool(self._resource(resource_type).get("searchRevInclude"))

    def _flag(self, resource_type: str, name: str) -> bool | None:
        value = self._resource(resource_type).get(name)
        return value if isinstance(value, bool) else None

    def _resources(self) -> list[dict[str, Any]]:
        return [r for r in self._rest.get("resource") or [] if isinstance(r, dict)]

    def _resource(self, resource_type: str) -> Mapping[str, Any]:
        for resource in self._resources():
            if resource.get("type") == resource_type:
                return resource
        return {}


def _codes(interactions: Any) -> frozenset[str]:
    if not isinstance(interactions, list):
        return frozenset()
    return frozenset(str(i["code"]) for i in interactions if isinstance(i, dict) and i.get("code"))
