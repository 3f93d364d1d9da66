"""The audit trail of a push — a Provenance for the session's resources, and the fhir-iastm
Device that assembled them (https://hl7.org/fhir/R4/provenance.html).

Pure: the same record, Bundle and settings give the same entries.

* ``target``: every session-owned resource of the Bundle (Encounter, Conditions, Procedures,
  Observations), by their ``fullUrl`` (the server resolves them inside the transaction);
* ``agent``: the clinic Organization as ``author`` and the fhir-iastm Device as ``assembler``
  (CodeSystem provenance-participant-type);
* ``entity``: the source record, role ``source``, by its session identifier; its
  ``record_version`` is the Provenance's ``source-record-version`` extension;
* ``recorded``: the record's ``recorded_at``.

R4 Provenance has no ``identifier``, so it cannot be written by a conditional PUT keyed on one:
it is written with a client-assigned id, uuid5 of ``session_id/provenance``
(``PUT Provenance/{id}``): a re-push replaces the session's one Provenance instead of adding
another. The Device is shared (``POST`` with ``ifNoneExist`` on its identifier, never updated).
"""

from __future__ import annotations

from fhir_iastm.mapping.codes import tables
from fhir_iastm.mapping.datatypes import Json
from fhir_iastm.mapping.ids import full_url, identifier_query, namespace, sd, sid, uuid5_text
from fhir_iastm.mapping.settings import MappingSettings
from fhir_iastm.records.model import SessionRecord

DEVICE_NAME = "fhir-iastm"
#: Device.deviceName.type (required binding, https://hl7.org/fhir/R4/valueset-device-nametype.html)
DEVICE_NAME_TYPE = "user-friendly-name"
#: Provenance.entity.role (https://hl7.org/fhir/R4/valueset-provenance-entity-role.html)
ENTITY_ROLE = "source"
PROVENANCE_ROLE, DEVICE_ROLE = "provenance", "device"


def provenance_id(base: str, session_id: str) -> str:
    """The client-assigned id of a session's Provenance (stable across versions and retries)."""
    return uuid5_text(namespace(base), f"{session_id}/{PROVENANCE_ROLE}")


def device_entry(settings: MappingSettings) -> Json:
    """The fhir-iastm Device: created once per server, found by its identifier afterwards."""
    system = sid(settings.base, "software")
    return {
        "fullUrl": f"urn:uuid:{uuid5_text(namespace(settings.base), DEVICE_ROLE)}",
        "resource": {
            "resourceType": "Device",
            "identifier": [{"system": system, "value": DEVICE_NAME}],
            "deviceName": [{"name": DEVICE_NAME, "type": DEVICE_NAME_TYPE}],
        },
        "request": {"method": "POST", "url": "Device",
                    "ifNoneExist": identifier_query(system, DEVICE_NAME)},
    }


def provenance_entries(bundle: Json, record: SessionRecord,
                       settings: MappingSettings) -> list[Json]:
    """[Device entry, Provenance entry] to add to the session's transaction."""
    base = settings.base
    codes = tables(base)
    owned = [e["fullUrl"] for e in bundle["entry"] if e["request"]["method"] == "PUT"]
    clinics = [e["fullUrl"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "Organization"]
    device = device_entry(settings)
    pid = provenance_id(base, record.session_id)
    provenance = {
        "resourceType": "Provenance",
        "id": pid,
        "extension": [{"url": sd(base, "source-record-version"),
                       "valuePositiveInt": record.record_version}],
        "target": [{"reference": url} for url in owned],
        "recorded": record.recorded_at,
        "agent": [
            *({"type": {"coding": [codes.fixed("provenance_author")]},
               "who": {"reference": url}} for url in clinics[:1]),
            {"type": {"coding": [codes.fixed("provenance_assembler")]},
             "who": {"reference": device["fullUrl"]}},
        ],
        "entity": [{
            "role": ENTITY_ROLE,
            "what": {
                "identifier": {"system": sid(base, "iastm-session"), "value": record.session_id},
                "display": f"IASTM session record, version {record.record_version}",
            },
        }],
    }
    return [device, {
        "fullUrl": full_url(base, record.session_id, PROVENANCE_ROLE),
        "resource": provenance,
        "request": {"method": "PUT", "url": f"Provenance/{pid}"},
    }]


__all__ = ["DEVICE_NAME", "device_entry", "provenance_entries", "provenance_id"]
