"""fhir-iastm: map IASTM physical-therapy session records to FHIR R4 and back.

Layers (enforced by ``tests/test_layering.py``):

* **Core** — ``errors``, ``records``, ``mapping``, ``profiles``, ``validation``: pure functions over
  data. They import only the standard library, marshmallow, ``fhir.resources.R4B``, fhirpathpy,
  and rfc8785 (ICD-10-CM validity comes from ``data/icd10cm.txt.gz``, derived from the pinned
  simple-icd-10-cm package by ``scripts/derive_icd10cm.py``). They read no configuration, no
  clock and no network; "now", ids and profiles come in as arguments.
* **Edges** — ``client`` (requests), ``storage`` (SQLAlchemy), ``api`` (Flask), ``cli`` (click).
* **Wiring** — ``service`` is the only module that joins core and edges.

Nothing imports ``api`` or ``cli``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
