"""Deterministic identity — identifier systems, fullUrls and conditional URLs
(docs/decisions.md#identifiers).

``fullUrl`` = ``urn:uuid:`` + uuid5(namespace of the canonical
base, ``f"{session_id}/{role}"``) so a retried Bundle is byte-identical (docs/decisions.md#d6).
Conditional URLs
FHIR-escape the value, then percent-encode system and value separately (docs/decisions.md#d16).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from functools import lru_cache
from urllib.parse import quote

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
MCODE_LATERALITY = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
MCODE_LOCATION = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-body-location-qualifier"


@lru_cache(maxsize=8)
def namespace(base: str) -> uuid.UUID:
    """The uuid5 namespace of one canonical base."""
    return uuid.uuid5(uuid.NAMESPACE_URL, base)


def full_url(base: str, session_id: str, role: str) -> str:
    """``urn:uuid:`` + lower-case uuid5 of ``session_id/role``."""
    return f"urn:uuid:{uuid5_text(namespace(base), f'{session_id}/{role}')}"


def uuid5_text(space: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(space, name))``, computed on the SHA-1's hex text (RFC 4122 4.3: SHA-1
    of the namespace and the UTF-8 name; version 5 is the 13th hex digit, the variant ``10``
    the top bits of the 17th) without building a ``UUID``."""
    h = hashlib.sha1(_namespace_bytes(space.int) + name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


#: A hex digit with its top two bits set to ``10`` (the RFC 4122 variant).
_VARIANT = {d: "89ab"[int(d, 16) & 0x3] for d in "0123456789abcdef"}


@lru_cache(maxsize=8)
def _namespace_bytes(number: int) -> bytes:
    """A namespace's 16 bytes, by its number (``UUID.int``: hashing a ``UUID`` runs Python)."""
    return number.to_bytes(16, "big")


def sid(base: str, name: str) -> str:
    """An identifier system ``{CANON}/sid/{name}``."""
    return f"{base}/sid/{name}"


def sd(base: str, name: str) -> str:
    """A StructureDefinition URL ``{CANON}/StructureDefinition/{name}`` (profiles, extensions)."""
    return f"{base}/StructureDefinition/{name}"


def session_resource_value(session_id: str, role: str) -> str:
    """The value of the ``iastm-session-resource`` identifier: ``{session_id}/{role}``."""
    return f"{session_id}/{role}"


def fhir_escape(value: str) -> str:
    """Escape FHIR search special characters (R4 http search §3.1.1.0.1)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$").replace("|", "\\|")


@lru_cache(maxsize=256)
def _quoted_system(system: str) -> str:
    return quote(system, safe="")


#: Values that neither the FHIR escape nor ``quote(safe="")`` change, but for ``/`` (``%2F``):
#: ASCII letters, digits, ``_.-~`` and ``/`` (most identifier values).
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.~/-]*")


def _quoted_value(value: str) -> str:
    if _PLAIN_VALUE.fullmatch(value):
        return value.replace("/", "%2F")
    return quote(fhir_escape(value), safe="")


def identifier_query(system: str, value: str) -> str:
    """``identifier=system|value`` with escaping and percent-encoding (docs/decisions.md#d16)."""
    return f"identifier={_quoted_system(system)}|{_quoted_value(value)}"


def conditional_url(resource_type: str, system: str, value: str) -> str:
    """``Type?identifier=system|value`` for a conditional PUT."""
    return f"{resource_type}?{identifier_query(system, value)}"


__all__ = [
    "MCODE_LATERALITY",
    "MCODE_LOCATION",
    "NPI_SYSTEM",
    "conditional_url",
    "fhir_escape",
    "full_url",
    "identifier_query",
    "namespace",
    "sd",
    "session_resource_value",
    "sid",
]
