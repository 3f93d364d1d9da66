"""Helpers shared by the mapping tests (no tests here): example records and Bundle rewrites."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fhir_iastm.records.model import SessionRecord
from fhir_iastm.records import load_record

EXAMPLES = Path(__file__).parents[1] / "data" / "examples"
GOOD = sorted(p.stem for p in EXAMPLES.glob("good-*.json"))
BASE = "https://iastm.example.org/fhir"
SERVER = "http://127.0.0.1:8080/fhir"


def good(name: str) -> SessionRecord:
    """A good example (name or unique prefix) loaded through the record contract."""
    matches = [g for g in GOOD if g.startswith(name)]
    assert len(matches) == 1, matches
    return load_record(json.loads((EXAMPLES / f"{matches[0]}.json").read_text("utf-8")))


def resources(bundle: dict[str, Any], resource_type: str | None = None) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if resource_type is None or e["resource"]["resourceType"] == resource_type
    ]


def by_profile(bundle: dict[str, Any], profile: str) -> list[dict[str, Any]]:
    url = f"{BASE}/StructureDefinition/{profile}"
    return [r for r in resources(bundle) if url in r.get("meta", {}).get("profile", [])]


def as_searchset(bundle: dict[str, Any]) -> dict[str, Any]:
    """What a server returns for the pull query: server ids, ``Type/id`` references, no request."""
    ids = {}
    for n, entry in enumerate(bundle["entry"], 1):
        ids[entry["fullUrl"]] = f"{entry['resource']['resourceType']}/{100 + n}"
    text = json.dumps(bundle)
    for urn, literal in ids.items():
        text = text.replace(urn, literal)
    data = json.loads(text)
    entries = []
    for entry in data["entry"]:
        resource = entry["resource"]
        literal = entry["fullUrl"]
        resource["id"] = literal.split("/")[1]
        resource["meta"] = {"versionId": "1", **resource.get("meta", {})}
        entries.append(
            {
                "fullUrl": f"{SERVER}/{literal}",
                "resource": resource,
                "search": {
                    "mode": "match" if resource["resourceType"] == "Procedure" else "include"
                },
            }
        )
    return {"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": entries}


def mutate(bundle: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(bundle)


def session_procedure(bundle: dict[str, Any]) -> dict[str, Any]:
    (proc,) = by_profile(bundle, "iastm-procedure")
    return proc
