"""FACADE: the FHIR read side for EHRs — stored resources and their search index, search
parameter parsing, paging cursors, Bundles and the CapabilityStatement, all read from one
parameter table (``facade.params``). Imports the core and the storage's plain types; no Flask
(views live in ``fhir_iastm.api``) and no SQL (it lives in ``fhir_iastm.storage``).
"""

from fhir_iastm.facade.extract import index_resource, resource_set
from fhir_iastm.facade.parse import SearchError, parse_search
from fhir_iastm.facade.resources import business_key, logical_id, stored_resources

__all__ = [
    "SearchError",
    "business_key",
    "index_resource",
    "logical_id",
    "parse_search",
    "resource_set",
    "stored_resources",
]
