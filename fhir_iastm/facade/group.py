"""The Group of a clinic: one Group per clinic Organization, its members the clinic's patients.

Groups are not stored: ``Group/<id>`` has the id of the clinic's Organization and is built from
it and the Patients whose ``managingOrganization`` is that Organization (R4 group.html: ``type``
person, ``actual`` true).
"""

from __future__ import annotations

from typing import Any


def clinic_group(organization: dict[str, Any], members: list[tuple[str, str]],
                 last_updated: str) -> dict[str, Any]:
    """The Group resource of a clinic (``members``: Patient ids with their lastUpdated)."""
    group: dict[str, Any] = {
        "resourceType": "Group",
        "id": organization["id"],
        "meta": {"lastUpdated": last_updated},
        "identifier": [dict(i) for i in organization.get("identifier") or []],
        "active": True,
        "type": "person",
        "actual": True,
        "name": organization.get("name") or "clinic",
        "managingEntity": {"reference": f"Organization/{organization['id']}"},
        "quantity": len(members),
    }
    if members:
        group["member"] = [{"entity": {"reference": f"Patient/{pid}"}} for pid, _ in members]
    return group


__all__ = ["clinic_group"]
