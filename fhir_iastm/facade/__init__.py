"""FACADE: the FHIR read side for EHRs — stored resources, search semantics, paging and the
CapabilityStatement. Imports the core; no Flask (views live in ``fhir_iastm.api``).
"""

from fhir_iastm.facade.resources import business_key, logical_id, stored_resources
from fhir_iastm.facade.search import SEARCHES, patient_reference, split_date_param

__all__ = [
    "SEARCHES",
    "business_key",
    "logical_id",
    "patient_reference",
    "split_date_param",
    "stored_resources",
]
