"""fhir-iastm: map IASTM physical-therapy session records to FHIR R4 and back.

Layers (enforced by ``tests/test_layering.py``):

* **Core** — ``errors``, ``records``, ``mapping``, ``profiles``, ``validation``: pure functions over
  data. They import only the standard library, marshmallow, ``fhir.resources.R4B``, fhirpathpy,
  simple-icd-10-cm and rfc8785. They read no configuration, no clock and no network; "now", ids and
  profiles come in as arguments.
* **Edges** — ``client`` (requests), ``storage`` (SQLAlchemy), ``api`` (Flask), ``cli`` (click).
* **Wiring** — ``service`` is the only module that joins core and edges.

Nothing imports ``api`` or ``cli``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
