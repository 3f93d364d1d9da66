"""The export writes the JSON text the database builds from the stored body
(``storage.exports.export_text``) instead of parsing and re-writing each resource in Python: it
must write what the Python path (``with_meta`` + ``json.dumps``) wrote — the same bytes on SQLite,
the same JSON on PostgreSQL (``jsonb`` keeps its own key order and spacing)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, text

from fhir_iastm.facade.bundle import with_meta
from fhir_iastm.facade.export import EXPORT_TYPES
from fhir_iastm.facade.provenance import session_provenance
from fhir_iastm.facade.resources import stored_resources
from fhir_iastm.mapping import MappingSettings, to_fhir
from fhir_iastm.mapping.provenance import provenance_entries
from fhir_iastm.records import record_hash
from fhir_iastm.records.model import SessionRecord, from_dict
from fhir_iastm.storage import Store
from fhir_iastm.storage.exports import ExportStore, export_text
from fhir_iastm.storage.fhir_types import StoredResource
from tests.api.bulk_support import GOOD, STATIC, Bulk, other_clinic


def python_line(stored: StoredResource) -> str:
    """What the export wrote before: the parsed body through ``with_meta``, dumped compact."""
    return json.dumps(with_meta(stored), ensure_ascii=False, separators=(",", ":"))


def unusual_session() -> dict[str, Any]:
    """A session of the second clinic whose patient's name needs escapes and non-ASCII text."""
    raw = other_clinic()
    raw["session_id"], raw["patient"]["mrn"] = "ESC-2025-000001", "MRN-ESC-1"
    raw["patient"]["family_name"] = 'Ørsted "Zoë" \\ Ñúñez\tß'
    raw["patient"]["given_names"] = ["Ǆemal", "李"]
    return raw


@pytest.fixture
def bulk(make_bulk: Callable[..., Bulk]) -> Bulk:
    b = make_bulk()
    response = b.client.post("/api/sessions", json=unusual_session(), headers=STATIC)
    assert response.status_code == 201, response.get_json()
    return b


def exported(b: Bulk, manifest: dict[str, Any]) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    for item in manifest["output"]:
        body = b.download(item["url"]).get_data(as_text=True)
        lines.setdefault(item["type"], []).extend(body.splitlines())
    return lines


def test_the_export_writes_what_the_python_path_wrote(bulk: Bulk) -> None:
    manifest = bulk.export("/fhir/$export?_type=" + ",".join(
        t for t in EXPORT_TYPES if t != "Provenance"))
    lines = exported(bulk, manifest)
    store: Store = bulk.app.extensions["fhir_iastm"].store
    sqlite = store.engine.dialect.name == "sqlite"
    with ExportStore(store).snapshot() as snap:
        for rtype in EXPORT_TYPES:
            if rtype == "Provenance":
                continue
            before = [python_line(s) for s in snap.resources(rtype)]
            assert before, rtype
            if sqlite:  # byte for byte
                assert lines[rtype] == before, rtype
            else:
                assert [json.loads(x) for x in lines[rtype]] == [json.loads(x) for x in before]
    assert any("Zoë" in x and "李" in x for x in lines["Patient"])


BODIES = [
    {"resourceType": "Basic", "code": {"text": "x"}},  # no meta
    {"resourceType": "Basic"},  # nothing else
    {"resourceType": "Basic", "id": "old", "meta": {"versionId": "9", "profile": ["p"]},
     "code": {"text": 'é "q" \\ \n \u0001 \u2028'}, "n": [1.5, -0.25, 12, 1e-07, True, None]},
    {"meta": {"tag": [{"code": "t"}], "lastUpdated": "2000-01-01T00:00:00Z"},
     "resourceType": "Basic", "z": {"a": []}, "a": {}},
]


@pytest.mark.parametrize("body", BODIES)
def test_export_text_is_with_meta_of_the_stored_body(store: Store, body: dict[str, Any]) -> None:
    dialect = store.engine.dialect.name
    stored = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    cast = ":body" if dialect == "sqlite" else "CAST(:body AS jsonb)"
    row = text(f"(SELECT 'Basic' AS res_type, 'id-1' AS res_id, 3 AS version, "
               f"'2025-01-02T03:04:05.000006' AS last_updated, {cast} AS body) AS t")
    with store.read() as conn:
        line = conn.execute(select(export_text(dialect)).select_from(row),
                            {"body": stored}).scalar_one()
    want = python_line(StoredResource(1, "Basic", "id-1", 3, "2025-01-02T03:04:05.000006", False,
                                      body))
    if dialect == "sqlite":
        assert line == want
    else:
        assert json.loads(line) == json.loads(want)
    assert list(json.loads(line))[:3] == ["resourceType", "id", "meta"]
    assert "\n" not in line


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name[:7])
def test_the_provenance_is_the_one_the_full_mapping_gives(path: Any) -> None:
    """``session_provenance`` maps without narratives and rewrites only the Provenance: the
    same Provenance as the whole Bundle mapped and stored (what the export built before)."""
    record = from_dict(SessionRecord, json.loads(path.read_text()))
    settings = replace(MappingSettings(), record_hash=record_hash(record))
    bundle = to_fhir(record, settings)
    full = stored_resources({"entry": [*bundle["entry"],
                                       *provenance_entries(bundle, record, settings)]})[-1]
    assert session_provenance(record, settings) == full
