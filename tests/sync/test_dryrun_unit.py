"""Pure parts of the dry run: the comparison, the JSON Patch and the identifier of an entry."""

from __future__ import annotations

import jsonpatch

from fhir_iastm.sync import diff
from fhir_iastm.sync.lookup import entry_query, queries_of


def test_server_owned_elements_are_not_a_change() -> None:
    server = {"resourceType": "Observation", "id": "7", "status": "final",
              "meta": {"versionId": "3", "lastUpdated": "2026-01-01T00:00:00Z",
                       "source": "#abc", "profile": ["p"]},
              "subject": {"reference": "Patient/9"}}
    ours = {"resourceType": "Observation", "status": "final", "meta": {"profile": ["p"]},
            "subject": {"reference": "urn:uuid:1"}}
    assert diff.patch(server, diff.resolved(ours, {"urn:uuid:1": "Patient/9"})) == []
    assert diff.patch(server, ours) == [
        {"op": "replace", "path": "/subject/reference", "value": "urn:uuid:1"}]


def test_the_patch_applied_to_the_server_resource_gives_ours() -> None:
    server = {"resourceType": "Observation", "id": "7", "status": "final",
              "note": [{"text": "a"}], "valueInteger": 3}
    ours = {"resourceType": "Observation", "status": "amended", "valueInteger": 4}
    ops = diff.patch(server, ours)
    assert jsonpatch.apply_patch(diff.comparable(server), ops) == ours
    assert diff.readable(ops) == sorted(diff.readable(ops), key=diff.readable(ops).index)
    assert any(line.startswith("  - /note") for line in diff.readable(ops))


def test_a_create_is_one_whole_document_add() -> None:
    ours = {"resourceType": "Encounter", "status": "finished"}
    assert diff.patch(None, ours) == [{"op": "add", "path": "", "value": ours}]


def test_the_identifier_of_a_conditional_entry_matches_the_server_resource() -> None:
    value = "S-1/obs/a,b|c"
    resource = {"resourceType": "Observation",
                "identifier": [{"system": "https://x.org/sid/r", "value": value}]}
    put = {"request": {"method": "PUT",
                       "url": "Observation?identifier=https%3A%2F%2Fx.org%2Fsid%2Fr|"
                              "S-1%2Fobs%2Fa%5C%2Cb%5C%7Cc"}}
    post = {"request": {"method": "POST", "url": "Observation",
                        "ifNoneExist": "identifier=https%3A%2F%2Fx.org%2Fsid%2Fr|"
                                       "S-1%2Fobs%2Fa%5C%2Cb%5C%7Cc"}}
    assert entry_query(put) == entry_query(post) == "https://x.org/sid/r|S-1/obs/a\\,b\\|c"
    assert entry_query(put) in queries_of(resource)
    assert entry_query({"request": {"method": "PUT", "url": "Observation/1"}}) is None
