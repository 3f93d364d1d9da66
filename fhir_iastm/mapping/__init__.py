"""CORE: the mapping between internal IASTM session records and FHIR R4 (docs/mapping.md).

Pure functions: imports the standard library, ``fhir_iastm.records``, ``fhir_iastm.errors`` and
(lazily) ``fhir.resources.R4B``; no I/O.

* :func:`to_fhir` — record -> transaction Bundle (plain JSON dict, byte-deterministic);
  :func:`mapped` — the same with every Reference its resources carry.
* :func:`from_fhir` — transaction/searchset Bundle or resource list -> validated record.
* :func:`canonical_for_roundtrip` — the form in which the round trip must be lossless.
* :func:`check_structure` — one R4B model parse per resource of a Bundle.

One module per resource family (``parties``, ``encounter``, ``condition``, ``procedure``,
``adjunct``, ``observation``), written in FHIR element order against docs/mapping.md.
"""

from fhir_iastm.mapping.bundle import mapped, to_fhir
from fhir_iastm.mapping.reverse import from_fhir, record_dict
from fhir_iastm.mapping.roundtrip import canonical_for_roundtrip
from fhir_iastm.mapping.settings import DEFAULT_CANONICAL_BASE, MappingSettings
from fhir_iastm.mapping.structure import check_resource, check_structure

__all__ = [
    "DEFAULT_CANONICAL_BASE",
    "MappingSettings",
    "canonical_for_roundtrip",
    "check_resource",
    "check_structure",
    "from_fhir",
    "mapped",
    "record_dict",
    "to_fhir",
]
